//! `container ps`, `container inspect`, `container logs`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use rcompose_engine::container::inspect::{self, inspect_json};
use rcompose_engine::container::model::{ContainerConfig, ContainerState, Status};
use rcompose_engine::logs::{self, ReadOptions};
use serde_json::{Value, json};

use super::GlobalOpts;
use super::container::{InspectArgs, LogsArgs, PsArgs, engine};
use super::container_fmt::{render_table, render_template, since};
use rcompose_engine::units::time::{log_bound, now_secs};
use rcompose_engine::units::{human_duration, human_size_with_precision};

fn quoted_command(c: &ContainerConfig) -> String {
    format!("\"{}\"", c.args.join(" "))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

fn ps_row(c: &ContainerConfig, st: &ContainerState, no_trunc: bool) -> Value {
    let health = inspect::effective_health(c, st);
    let health = health.as_ref().map(|h| h.status.as_str());
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cmd = quoted_command(c);
    json!({
        "Command": if no_trunc { cmd } else { truncate(&cmd, 20) },
        "CreatedAt": c.created.replace('T', " ").split('.').next().unwrap_or_default().to_string() + " +0000 UTC",
        "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
        "Image": c.image,
        "Labels": labels.join(","),
        "LocalVolumes": c.host.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
        "Mounts": c.host.mounts.iter().map(|m| if m.kind == "volume" { truncate(&m.source, 15) } else { m.source.clone() }).collect::<Vec<_>>().join(","),
        "Names": c.name,
        "Networks": c.host.network_mode,
        "Ports": "",
        "RunningFor": format!("{} ago", human_duration(since(&c.created))),
        "Size": "",
        "State": st.status.as_str(),
        "Status": inspect::status_text(st, health),
    })
}

pub fn ps(g: &GlobalOpts, a: PsArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    let mut rows = vec![];
    let mut all = eng.store.list()?;
    all.reverse(); // newest first, as docker
    let limit = if a.latest { Some(1) } else { a.last };
    let show_all = a.all || limit.is_some() || a.filter.iter().any(|f| f.starts_with("status="));
    for c in all {
        let st = eng.observe(&c.id)?;
        if !show_all
            && !matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        let mut keep = true;
        for f in &a.filter {
            keep &= match rcompose_wire::netwire::live::ps_filter(&nets, &c, f) {
                Some(hit) => hit?,
                None => inspect::matches_filter(&c, &st, f).map_err(|e| anyhow!(e))?,
            };
        }
        if keep {
            let mut row = ps_row(&c, &st, a.no_trunc);
            rcompose_wire::netwire::live::ps_columns(&nets, &c, &mut row);
            if a.size {
                row["Size"] = json!(human_size_with_precision(eng.size_rw(&c.id)?, 4));
            }
            rows.push(row);
        }
    }
    if let Some(n) = limit {
        rows.truncate(n);
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
        Some(t) if t.starts_with("table ") => {
            const NAMES: [(&str, &str); 13] = [
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("CreatedAt", "CREATED AT"),
                ("RunningFor", "CREATED"),
                ("Ports", "PORTS"),
                ("State", "STATE"),
                ("Status", "STATUS"),
                ("Size", "SIZE"),
                ("Names", "NAMES"),
                ("Labels", "LABELS"),
                ("Mounts", "MOUNTS"),
                ("Networks", "NETWORKS"),
            ];
            let text = render_table(t, &rows, &NAMES).map_err(|e| anyhow!(e))?;
            write!(out, "{text}")?;
        }
        Some(t) if t != "table" => {
            for r in &rows {
                writeln!(out, "{}", render_template(t, r).map_err(|e| anyhow!(e))?)?;
            }
        }
        _ => {
            let mut cols = vec![
                ("CONTAINER ID", "ID"),
                ("IMAGE", "Image"),
                ("COMMAND", "Command"),
                ("CREATED", "RunningFor"),
                ("STATUS", "Status"),
                ("PORTS", "Ports"),
                ("NAMES", "Names"),
            ];
            if a.size {
                cols.push(("SIZE", "Size"));
            }
            let cell = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_string();
            let widths: Vec<usize> = cols
                .iter()
                .map(|(h, k)| {
                    rows.iter()
                        .map(|r| cell(r, k).chars().count())
                        .max()
                        .unwrap_or(0)
                        .max(h.len())
                })
                .collect();
            let line = |vals: Vec<String>| {
                let mut s = String::new();
                for (i, v) in vals.iter().enumerate() {
                    if i + 1 == vals.len() {
                        s.push_str(v);
                    } else {
                        s.push_str(&format!("{:w$}   ", v, w = widths[i]));
                    }
                }
                s
            };
            writeln!(
                out,
                "{}",
                line(cols.iter().map(|(h, _)| h.to_string()).collect())
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{}",
                    line(cols.iter().map(|(_, k)| cell(r, k)).collect())
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(g: &GlobalOpts, a: InspectArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    let mut values = vec![];
    let mut failed = false;
    for key in &a.containers {
        match eng.store.resolve(key) {
            Ok(c) => {
                let st = eng.observe(&c.id)?;
                let mut v = inspect_json(&eng.store, &c, &st);
                rcompose_wire::netwire::live::patch_inspect(&nets, &eng.store, &c, &mut v);
                if a.size {
                    v["SizeRw"] = json!(eng.size_rw(&c.id)?);
                }
                values.push(v);
            }
            Err(e) => {
                super::render_error(&e.into());
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&values)?),
        Some(t) => {
            for v in &values {
                println!("{}", render_template(t, v).map_err(|e| anyhow!(e))?);
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(g: &GlobalOpts, a: LogsArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let c = eng.store.resolve(&a.container)?;
    if !c.host.keeps_logs() {
        bail!(
            "configured logging driver does not support reading: container {} runs with --log-driver {}",
            c.name,
            c.host.log_driver()
        );
    }
    let path = eng.store.log_path(&c.id);
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow!("invalid --tail \"{n}\": use a number or all"))?,
        ),
    };
    let opts = ReadOptions {
        tail,
        since: a
            .since
            .as_deref()
            .map(|s| log_bound(s, now_secs()))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| log_bound(s, now_secs()))
            .transpose()?,
    };
    let (entries, mut pos) = logs::read(&path, &opts)?;
    let print = |entries: &[logs::LogEntry]| -> Result<()> {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for e in entries {
            let text = if a.timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log.clone()
            };
            if e.stream == "stderr" {
                err.write_all(text.as_bytes())?;
            } else {
                out.write_all(text.as_bytes())?;
            }
        }
        out.flush()?;
        Ok(())
    };
    print(&entries)?;
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let follow_opts = ReadOptions { tail: None, ..opts };
    // Ends when the log is gone (removed with --rm) or the container stopped. The position
    // carries over the json-file log's rotations (the rest of the old file, then the new).
    while let Ok((more, next)) = logs::read_from(&path, pos, &follow_opts) {
        pos = next;
        print(&more)?;
        if more.is_empty() {
            let st = match eng.observe(&c.id) {
                Ok(st) => st,
                Err(_) => break,
            };
            if !matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting | Status::Created
            ) {
                // One last read: the monitor flushes before recording the exit.
                if let Ok((last, _)) = logs::read_from(&path, pos, &follow_opts) {
                    print(&last)?;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(ExitCode::SUCCESS)
}
