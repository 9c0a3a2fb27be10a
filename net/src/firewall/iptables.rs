//! The bridge to the host's other firewalls.
//!
//! Docker sets the iptables `FORWARD` policy to `DROP`; ufw and firewalld's iptables backend
//! do the same, and ufw drops unknown `INPUT` too. A packet must pass every base chain on its
//! hook, so an accept in our own nftables table cannot override a drop in theirs: without help
//! every bridged or forwarded packet of ours dies in their chain. So, as netavark does, we add
//! narrowly scoped accepts for our own bridges to the iptables `filter` table, only where that
//! table would drop:
//!
//! - `<prefix>-FORWARD`: from one of our bridges (container↔container on one bridge, and out
//!   through masquerade), and into one of our bridges when the connection is established or
//!   DNAT-ed (replies, published ports). Jumped to from `DOCKER-USER` where Docker made it (the
//!   chain Docker documents for other tools' rules), else from `FORWARD`.
//! - `<prefix>-INPUT`: DNS queries from our bridges to the embedded server on the gateway.
//!
//! Everything else stays with our nftables table (isolation between networks, internal
//! networks), which still sees every packet: these accepts widen nothing it drops.
//!
//! We never flush or reorder rules we do not own: our two chains are rebuilt whole
//! (`iptables-restore --noflush` flushes a chain it declares), and the jumps to them are
//! added when missing and deleted one by one. With no bridge left, chains and jumps go.
//! iptables-nft and iptables-legacy keep separate tables in the kernel, so each one present on
//! the host is handled on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::FirewallError;
use super::kernel::{boot_id, legacy_table_fingerprint, ruleset_generation};

/// One iptables implementation; each has its own `filter` table in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
}

/// `iptables` or `ip6tables`: separate tables, the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn stem(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    /// The per-namespace list of legacy tables (reading it loads nothing).
    fn legacy_names(self) -> &'static str {
        match self {
            Family::V4 => "/proc/thread-self/net/ip_tables_names",
            Family::V6 => "/proc/thread-self/net/ip6_tables_names",
        }
    }
}

impl Backend {
    pub fn program(self, family: Family) -> String {
        match self {
            Backend::Nft => format!("{}-nft", family.stem()),
            Backend::Legacy => format!("{}-legacy", family.stem()),
        }
    }

    fn restore_program(self, family: Family) -> String {
        format!("{}-restore", self.program(family))
    }
}

/// What a `filter` table holds, as `iptables -S` prints it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FilterTable {
    pub policies: BTreeMap<String, String>,
    pub chains: BTreeSet<String>,
    /// `(chain, whole line)` in order, e.g. `("FORWARD", "-A FORWARD -j DOCKER-USER")`.
    pub rules: Vec<(String, String)>,
}

impl FilterTable {
    pub fn parse(listing: &str) -> FilterTable {
        let mut t = FilterTable::default();
        for line in listing.lines().map(str::trim) {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("-P"), Some(chain), Some(policy)) => {
                    t.chains.insert(chain.to_string());
                    t.policies.insert(chain.to_string(), policy.to_string());
                }
                (Some("-N"), Some(chain), _) => {
                    t.chains.insert(chain.to_string());
                }
                (Some("-A"), Some(chain), _) => t.rules.push((chain.to_string(), line.to_string())),
                _ => {}
            }
        }
        t
    }

    fn rules_of(&self, chain: &str) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|(c, _)| c == chain)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// Whether a packet reaching `hook` may be dropped by someone else: a policy other than
    /// ACCEPT, or any rule but our own jump (ufw's, firewalld's and Docker's chains end in
    /// drops or rejects that we cannot read through).
    pub fn may_drop(&self, hook: &str, ours: &str) -> bool {
        let policy = self.policies.get(hook).map(String::as_str);
        policy.is_some_and(|p| p != "ACCEPT")
            || self.rules_of(hook).iter().any(|l| !is_jump_to(l, ours))
    }

    /// `(chain, count)` of every jump to `target`.
    fn jumps_to(&self, target: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (chain, line) in &self.rules {
            if is_jump_to(line, target) {
                *out.entry(chain.clone()).or_insert(0) += 1;
            }
        }
        out
    }
}

fn is_jump_to(line: &str, target: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.len() == 4 && words[0] == "-A" && words[2] == "-j" && words[3] == target
}

/// Our chain names for a state root: `RCOMPOSE-FORWARD`/`RCOMPOSE-INPUT` for the default root,
/// `RC-<hash>-…` for others (iptables chain names are at most 28 characters).
pub fn chain_prefix(table_name: &str) -> String {
    match table_name.strip_prefix("rcompose_") {
        Some(hash) => format!("RC-{hash}"),
        None => "RCOMPOSE".into(),
    }
}

/// The rules of our chain on `hook` for `bridges`, as `iptables -S` prints them.
pub fn wanted_rules(chain: &str, hook: &str, bridges: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for b in bridges {
        if hook == "FORWARD" {
            out.push(format!("-A {chain} -i {b} -j ACCEPT"));
            out.push(format!(
                "-A {chain} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            ));
            out.push(format!(
                "-A {chain} -o {b} -m conntrack --ctstate DNAT -j ACCEPT"
            ));
        } else {
            for p in ["udp", "tcp"] {
                out.push(format!(
                    "-A {chain} -i {b} -p {p} -m {p} --dport 53 -j ACCEPT"
                ));
            }
        }
    }
    out
}

/// The `iptables-restore --noflush` script that brings `table` to what `bridges` need, or
/// `None` when it already is. Pure, so every case is unit-tested without a kernel.
pub fn plan(table: &FilterTable, prefix: &str, bridges: &[String]) -> Option<String> {
    let mut declare = Vec::new();
    let mut delete = Vec::new();
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for hook in ["FORWARD", "INPUT"] {
        let ours = format!("{prefix}-{hook}");
        let needed = !bridges.is_empty() && table.may_drop(hook, &ours);
        let jumps = table.jumps_to(&ours);
        if !needed {
            if table.chains.contains(&ours) {
                for (chain, n) in &jumps {
                    delete.extend((0..*n).map(|_| format!("-D {chain} -j {ours}")));
                }
                declare.push(format!(":{ours} - [0:0]"));
                remove.push(format!("-X {ours}"));
            }
            continue;
        }
        let parent = if hook == "FORWARD" && table.chains.contains("DOCKER-USER") {
            "DOCKER-USER"
        } else {
            hook
        };
        let rules = wanted_rules(&ours, hook, bridges);
        let in_parent = jumps.get(parent).copied().unwrap_or(0);
        let rules_ok = table.chains.contains(&ours) && table.rules_of(&ours) == rules;
        if rules_ok && in_parent == 1 && jumps.len() == 1 {
            continue;
        }
        declare.push(format!(":{ours} - [0:0]"));
        add.extend(rules);
        for (chain, n) in &jumps {
            // One jump stays in the parent; duplicates and jumps from elsewhere go.
            let keep = usize::from(chain == parent);
            delete.extend((keep..*n).map(|_| format!("-D {chain} -j {ours}")));
        }
        if in_parent == 0 {
            add.push(format!("-I {parent} 1 -j {ours}"));
        }
    }
    if declare.is_empty() {
        return None;
    }
    let mut script = vec!["*filter".to_string()];
    script.extend(declare);
    script.extend(delete);
    script.extend(add);
    script.extend(remove);
    script.push("COMMIT".into());
    Some(script.join("\n") + "\n")
}

/// Keeps the host's iptables from dropping our traffic (see the module comment).
pub struct HostChains {
    prefix: String,
    memo_dir: Option<PathBuf>,
}

impl HostChains {
    pub fn new(prefix: impl Into<String>) -> HostChains {
        HostChains {
            prefix: prefix.into(),
            memo_dir: None,
        }
    }

    /// Remembers the last state made, so that an unchanged one costs no `iptables` run.
    pub fn remembering_in(mut self, dir: impl Into<PathBuf>) -> HostChains {
        self.memo_dir = Some(dir.into());
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn memo_path(&self) -> Option<PathBuf> {
        self.memo_dir
            .as_ref()
            .map(|d| d.join(format!("{}.iptables", self.prefix)))
    }

    fn last_bridges_path(&self) -> Option<PathBuf> {
        self.memo_dir
            .as_ref()
            .map(|d| d.join(format!("{}.iptables-last", self.prefix)))
    }

    fn bridges_key(bridges: &[String], bridges6: &[String]) -> String {
        format!("{}\n--\n{}", bridges.join("\n"), bridges6.join("\n"))
    }

    /// Whether our last successful [`HostChains::apply`] was for these very bridges.
    pub fn unchanged_since_last_apply(&self, bridges: &[String], bridges6: &[String]) -> bool {
        self.last_bridges_path().is_some_and(|p| {
            std::fs::read_to_string(p).is_ok_and(|m| m == Self::bridges_key(bridges, bridges6))
        })
    }

    /// Makes every iptables `filter` table on the host accept our `bridges`' traffic where it
    /// would drop it (and every ip6tables one for `bridges6`, our dual-stack bridges), and
    /// removes our chains from every table when the lists are empty.
    ///
    /// iptables-nft changes bump the nftables ruleset generation, and iptables-legacy changes
    /// the kernel's table info, so "same bridges, same generation and table info as after our
    /// last run" means nothing to do, at the cost of two syscalls instead of an `iptables` run.
    pub fn apply(&self, bridges: &[String], bridges6: &[String]) -> Result<(), FirewallError> {
        let legacy = [Family::V4, Family::V6].map(legacy_filter_exists);
        // Legacy tables have no generation counter: their kernel table info stands in for one.
        let fingerprint = |legacy: [bool; 2]| -> Option<String> {
            let mut parts = Vec::new();
            for (present, v6) in legacy.into_iter().zip([false, true]) {
                if present {
                    parts.push(legacy_table_fingerprint(v6)?);
                }
            }
            Some(parts.join(" "))
        };
        let memo = self.memo_path();
        let key = |generation: u32, legacy_print: &str| {
            format!(
                "{} {generation} {legacy_print}\n{}\n--\n{}",
                boot_id(),
                bridges.join("\n"),
                bridges6.join("\n")
            )
        };
        if let (Some(path), Some(g), Some(print)) =
            (&memo, ruleset_generation(), fingerprint(legacy))
            && std::fs::read_to_string(path).is_ok_and(|m| m == key(g, &print))
        {
            return Ok(());
        }
        let last = self.last_bridges_path();
        if let Some(path) = &last {
            let _ = std::fs::remove_file(path);
        }
        for (family, list, legacy) in [
            (Family::V4, bridges, legacy[0]),
            (Family::V6, bridges6, legacy[1]),
        ] {
            for backend in [Backend::Nft, Backend::Legacy] {
                if backend == Backend::Legacy && !legacy {
                    continue;
                }
                self.apply_backend(backend, family, list)?;
            }
        }
        if let Some(path) = &last
            && let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let _ = std::fs::write(path, Self::bridges_key(bridges, bridges6));
        }
        if let (Some(path), Some(g), Some(print)) =
            (&memo, ruleset_generation(), fingerprint(legacy))
            && let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, key(g, &print)).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        Ok(())
    }

    fn apply_backend(
        &self,
        backend: Backend,
        family: Family,
        bridges: &[String],
    ) -> Result<(), FirewallError> {
        let Some(program) = find_program(&backend.program(family)) else {
            return self.without_iptables(backend, family, bridges);
        };
        let listing = run(&program, &["-w", "-t", "filter", "-S"], None)?;
        let table = FilterTable::parse(&listing);
        let Some(script) = plan(&table, &self.prefix, bridges) else {
            return Ok(());
        };
        let restore = find_program(&backend.restore_program(family)).ok_or_else(|| {
            FirewallError::NoIptables {
                program: backend.restore_program(family),
                why: "to change the iptables filter table".into(),
            }
        })?;
        tracing::debug!("{}: {script}", restore.display());
        run(&restore, &["-w", "--noflush"], Some(&script))?;
        Ok(())
    }

    /// No iptables program: fine while nothing of the kind would drop our traffic. An
    /// iptables-nft table is visible to `nft`, so a dropping FORWARD there is reported with
    /// what to install; a legacy table cannot be read without the program at all.
    fn without_iptables(
        &self,
        backend: Backend,
        family: Family,
        bridges: &[String],
    ) -> Result<(), FirewallError> {
        if bridges.is_empty() {
            return Ok(());
        }
        let drops = match backend {
            Backend::Nft => nft_forward_policy_drops(family),
            Backend::Legacy => true,
        };
        if drops {
            return Err(FirewallError::NoIptables {
                program: backend.program(family),
                why: "the host's iptables FORWARD chain drops forwarded traffic (as Docker, ufw \
                      and firewalld set it up) and rcompose needs it to add accept rules for \
                      its bridges"
                    .into(),
            });
        }
        Ok(())
    }
}

/// Whether this network namespace has an iptables-legacy (or ip6tables-legacy) `filter`
/// table. Reading the list loads nothing; running `iptables-legacy` would create the table.
pub fn legacy_filter_exists(family: Family) -> bool {
    std::fs::read_to_string(family.legacy_names())
        .is_ok_and(|s| s.lines().any(|l| l.trim() == "filter"))
}

/// The iptables-nft `FORWARD` chain's policy is not accept (read through `nft`).
fn nft_forward_policy_drops(family: Family) -> bool {
    let nft_family = match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    };
    let Some(nft) = find_program("nft") else {
        return false;
    };
    let Ok(out) = Command::new(nft)
        .args(["-j", "list", "chain", nft_family, "filter", "FORWARD"])
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    doc["nftables"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["chain"]["policy"].as_str().is_some_and(|p| p != "accept"))
    })
}

/// A program on PATH or in the sbin directories (which a root shell without them on PATH,
/// e.g. under `su`, still has).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
    let spawn_err = |source| FirewallError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(FirewallError::Iptables {
            program: program.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests;
