//! `GET /containers/{id}/top`, `GET /containers/{id}/stats` and `POST /commit`: the same
//! engine calls as the CLI's `container top|stats|commit`, in docker's JSON.

use std::io::Write;
use std::time::Duration;

use rcompose_engine::container::commit::CommitOptions;
use rcompose_engine::container::model::Status;
use rcompose_engine::container::stats::{self, Sample};
use rcompose_engine::units::time::format_rfc3339;
use serde_json::{Value, json};

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

/// docker's stats interval.
const INTERVAL: Duration = Duration::from_secs(1);

fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}

/// `ps` output → docker's `{"Titles", "Processes"}`: the last column (the command) keeps
/// its spaces, as docker splits it.
pub fn parse_ps(text: &str) -> Value {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<&str> = lines
        .next()
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    let n = titles.len().max(1);
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            let mut fields = vec![];
            let mut rest = l.trim_start();
            for _ in 0..n - 1 {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            fields.push(rest.to_string());
            fields
        })
        .collect();
    json!({"Titles": titles, "Processes": rows})
}

/// `GET /containers/{id}/top?ps_args=`.
pub fn top(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let st = eng.observe(&c.id)?;
    if !matches!(st.status, Status::Running | Status::Paused) {
        return Err(not_running(&c.id));
    }
    let pids: Vec<String> = stats::pids(&c.id).iter().map(|p| p.to_string()).collect();
    let args: Vec<&str> = match req.param("ps_args").filter(|a| !a.trim().is_empty()) {
        Some(a) => a.split_whitespace().collect(),
        None => vec!["-ef"],
    };
    // As docker: the host's whole `ps` (any options, BSD-style too), then the container's
    // rows by the PID column.
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| ApiError::internal(format!("running ps (Debian package procps): {e}")))?;
    // ps exits 1 when no process matched; only a usage error is the client's.
    if !out.status.success() && out.stdout.is_empty() {
        return Err(ApiError::internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut v = parse_ps(&String::from_utf8_lossy(&out.stdout));
    only_pids(&mut v, &pids)?;
    Ok(Response::json(200, v))
}

/// Keeps the rows whose PID is one of `pids`.
pub fn only_pids(v: &mut Value, pids: &[String]) -> Result<(), ApiError> {
    let col = v["Titles"]
        .as_array()
        .and_then(|t| t.iter().position(|t| t == "PID"))
        .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    if let Some(rows) = v["Processes"].as_array_mut() {
        rows.retain(|r| r[col].as_str().is_some_and(|p| pids.iter().any(|x| x == p)));
    }
    Ok(())
}

fn cpu_stats(s: &Sample, host_ns: u64) -> Value {
    json!({
        "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": host_ns,
        "online_cpus": stats::online_cpus(),
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// One stats object as docker's daemon sends it; `pre` is the previous sample (zero on the
/// first of a one-shot read).
pub fn stats_json(
    id: &str,
    name: &str,
    now: (Sample, u64),
    pre: Option<&(Sample, u64)>,
    net: Option<stats::NetIo>,
) -> Value {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (s, host) = &now;
    let pre_cpu = match pre {
        Some((p, h)) => cpu_stats(p, *h),
        None => {
            json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "throttling_data": {}})
        }
    };
    let mut v = json!({
        "read": format_rfc3339(secs.as_secs() as i64, secs.subsec_nanos()),
        "preread": "0001-01-01T00:00:00Z",
        "id": id,
        "name": format!("/{name}"),
        "pids_stats": {"current": s.pids},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "Read", "value": s.blk_read},
            {"major": 0, "minor": 0, "op": "Write", "value": s.blk_write},
        ]},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(s, *host),
        "precpu_stats": pre_cpu,
        "memory_stats": {"usage": s.mem_usage, "limit": s.mem_limit, "stats": {}},
    });
    if let Some(n) = net {
        v["networks"] = json!({"eth0": {
            "rx_bytes": n.rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
            "tx_bytes": n.tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
        }});
    }
    v
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: one object per second while streaming
/// (until the container stops), else one computed over one interval (or at once with
/// `one-shot`).
pub fn stats(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let streaming = req.param("stream").is_none_or(|_| req.flag("stream"));
    let one_shot = req.flag("one-shot");
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let read = || -> Option<(Sample, u64)> {
            let st = eng.observe(&c.id).ok()?;
            if !matches!(st.status, Status::Running | Status::Paused) {
                return None;
            }
            Some((stats::sample(&c.id)?, stats::host_cpu_ns()))
        };
        let net = || {
            eng.observe(&c.id)
                .ok()
                .and_then(|st| stats::net_io(st.pid, st.pid_start_ticks))
        };
        let mut pre = read();
        if !streaming && one_shot {
            let now = pre.clone().unwrap_or_default();
            return writeln!(w, "{}", stats_json(&c.id, &c.name, now, None, net()));
        }
        loop {
            std::thread::sleep(INTERVAL);
            let now = read();
            let Some(cur) = now.clone() else {
                // Stopped: docker reports zeros once, then the stream ends.
                let zero = (Sample::default(), stats::host_cpu_ns());
                return writeln!(w, "{}", stats_json(&c.id, &c.name, zero, None, None));
            };
            writeln!(
                w,
                "{}",
                stats_json(&c.id, &c.name, cur, pre.as_ref(), net())
            )?;
            if !streaming {
                return Ok(());
            }
            pre = now;
        }
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub fn commit(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let key = req
        .param("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container parameter is required"))?;
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let tag = match (
        req.param("repo").filter(|r| !r.is_empty()),
        req.param("tag"),
    ) {
        (Some(r), Some(t)) if !t.is_empty() => Some(format!("{r}:{t}")),
        (Some(r), _) => Some(r.to_string()),
        (None, _) => None,
    };
    let nonempty = |k: &str| req.param(k).filter(|v| !v.is_empty()).map(String::from);
    let opts = CommitOptions {
        tag,
        message: nonempty("comment"),
        author: nonempty("author"),
        changes: req
            .query
            .iter()
            .filter(|(k, v)| k == "changes" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        pause: req.param("pause").is_none_or(|_| req.flag("pause")),
    };
    let id = eng.commit(&c.id, &opts)?;
    Ok(Response::json(201, json!({ "Id": id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_keeps_the_commands_spaces() {
        let v = parse_ps(
            "UID   PID  PPID  C STIME TTY  TIME     CMD\nroot  101  100  0 11:00 ?    00:00:00 sh -c sleep 60\n",
        );
        assert_eq!(v["Titles"].as_array().unwrap().len(), 8);
        assert_eq!(v["Processes"][0][1], "101");
        assert_eq!(v["Processes"][0][7], "sh -c sleep 60");
        let mut v = parse_ps("  PID TTY CMD\n 1 ? init\n 101 ? sh\n");
        only_pids(&mut v, &["101".into()]).unwrap();
        assert_eq!(v["Processes"], json!([["101", "?", "sh"]]));
        let mut none = parse_ps("USER CMD\nroot x\n");
        assert_eq!(only_pids(&mut none, &[]).unwrap_err().status, 500);
    }

    #[test]
    fn stats_carry_what_dockers_client_computes_from() {
        let s = Sample {
            cpu_ns: 2_000,
            mem_usage: 10,
            mem_limit: 100,
            pids: 3,
            blk_read: 1,
            blk_write: 2,
        };
        let pre = (
            Sample {
                cpu_ns: 1_000,
                ..s.clone()
            },
            5_000,
        );
        let v = stats_json("id", "n", (s, 9_000), Some(&pre), None);
        assert_eq!(v["name"], "/n");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 2_000);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1_000);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 5_000);
        assert_eq!(v["memory_stats"]["limit"], 100);
        assert_eq!(v["pids_stats"]["current"], 3);
    }
}
