//! nftables backend: one `inet` table of our own, rebuilt in a single `nft -j -f -`
//! transaction (add table, delete table, add everything), so the kernel never sees a half
//! state and other tools' tables are never touched. With nothing desired the table is deleted.
//!
//! Chains (all in our table):
//! - `forward` (filter/forward): established traffic passes; internal networks talk only
//!   inside their bridge; DNAT-ed connections (published ports) pass; a new connection from one
//!   of our bridges into another of our bridges is dropped (isolation).
//! - `prerouting`/`output` (nat): traffic to a local address jumps to `published`, which holds
//!   one DNAT rule per published port.
//! - `postrouting` (nat): masquerade for non-internal networks leaving their bridge; masquerade
//!   of 127.0.0.0/8 sources DNAT-ed into a bridge (needs route_localnet, set by `bridge`); and
//!   hairpin masquerade when a container reaches a published port on its own bridge.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::kernel::{boot_id, ruleset_generation};
use super::{Desired, Firewall, FirewallError};
use crate::ports::Proto;

pub struct Nftables {
    table: String,
    program: String,
    /// Directory where the last applied transaction is remembered (see `apply`).
    memo_dir: Option<PathBuf>,
}

impl Nftables {
    /// `table` is the name of our `inet` table (e.g. `rcompose`).
    pub fn new(table: impl Into<String>) -> Nftables {
        Nftables {
            table: table.into(),
            program: "nft".into(),
            memo_dir: None,
        }
    }

    /// Remembers the last applied transaction in `dir` (a runtime directory), so that an
    /// apply that would change nothing is skipped (see `apply`).
    pub fn remembering_in(mut self, dir: impl Into<PathBuf>) -> Nftables {
        self.memo_dir = Some(dir.into());
        self
    }

    fn memo_path(&self) -> Option<PathBuf> {
        self.memo_dir
            .as_ref()
            .map(|d| d.join(format!("{}.applied", self.table)))
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Where the last transaction we applied is kept, whatever happened in the kernel since.
    fn last_doc_path(&self) -> Option<PathBuf> {
        self.memo_dir
            .as_ref()
            .map(|d| d.join(format!("{}.last", self.table)))
    }

    /// Whether `desired` renders to the transaction we applied last (see
    /// [`super::Firewall::apply_if_changed`]).
    pub fn unchanged_since_last_apply(&self, desired: &Desired) -> bool {
        let doc = self.render(desired).to_string();
        self.last_doc_path()
            .is_some_and(|p| std::fs::read_to_string(p).is_ok_and(|m| m == doc))
    }

    /// The JSON transaction that makes the kernel match `desired`.
    pub fn render(&self, desired: &Desired) -> Value {
        let t = self.table.as_str();
        let table = json!({"family": "inet", "name": t});
        let mut cmds = vec![
            json!({"add": {"table": table}}),
            json!({"delete": {"table": table}}),
        ];
        if desired.networks.is_empty() && desired.ports.is_empty() {
            return json!({"nftables": cmds});
        }
        cmds.push(json!({"add": {"table": table}}));
        let base = |name: &str, kind: &str, hook: &str, prio: i32| {
            json!({"add": {"chain": {"family": "inet", "table": t, "name": name, "type": kind,
                "hook": hook, "prio": prio, "policy": "accept"}}})
        };
        cmds.push(base("forward", "filter", "forward", 0));
        cmds.push(base("prerouting", "nat", "prerouting", -100));
        cmds.push(base("output", "nat", "output", -100));
        cmds.push(base("postrouting", "nat", "postrouting", 100));
        cmds.push(json!({"add": {"chain": {"family": "inet", "table": t, "name": "published"}}}));
        let rule = |chain: &str, expr: Vec<Value>| json!({"add": {"rule": {"family": "inet", "table": t, "chain": chain, "expr": expr}}});

        // forward
        cmds.push(rule(
            "forward",
            vec![
                m(
                    "in",
                    json!({"ct": {"key": "state"}}),
                    json!(["established", "related"]),
                ),
                json!({"accept": null}),
            ],
        ));
        for n in desired.networks.iter().filter(|n| n.internal) {
            cmds.push(rule(
                "forward",
                vec![
                    iif("==", &n.bridge),
                    oif("!=", &n.bridge),
                    json!({"drop": null}),
                ],
            ));
            cmds.push(rule(
                "forward",
                vec![
                    oif("==", &n.bridge),
                    iif("!=", &n.bridge),
                    json!({"drop": null}),
                ],
            ));
        }
        cmds.push(rule(
            "forward",
            vec![
                m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"accept": null}),
            ],
        ));
        for n in &desired.networks {
            let others: Vec<&str> = desired
                .networks
                .iter()
                .filter(|o| o.bridge != n.bridge)
                .map(|o| o.bridge.as_str())
                .collect();
            if !others.is_empty() {
                cmds.push(rule(
                    "forward",
                    vec![
                        iif("==", &n.bridge),
                        m("==", meta("oifname"), json!({"set": others})),
                        json!({"drop": null}),
                    ],
                ));
            }
        }

        // DNAT for published ports, from outside and from the host itself.
        let local = m(
            "==",
            json!({"fib": {"result": "type", "flags": ["daddr"]}}),
            json!("local"),
        );
        for chain in ["prerouting", "output"] {
            cmds.push(rule(
                chain,
                vec![local.clone(), json!({"jump": {"target": "published"}})],
            ));
        }
        for p in &desired.ports {
            let b = &p.binding;
            let l4 = match b.proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            };
            if b.covers_ipv4() {
                let mut expr = vec![m("==", meta("nfproto"), json!("ipv4"))];
                if !b.host_ip.is_unspecified() {
                    expr.push(m(
                        "==",
                        payload("ip", "daddr"),
                        json!(b.host_ip.to_string()),
                    ));
                }
                expr.push(m("==", payload(l4, "dport"), json!(b.host_port)));
                expr.push(
                    json!({"dnat": {"family": "ip", "addr": p.container_ip.to_string(),
                    "port": b.container_port}}),
                );
                cmds.push(rule("published", expr));
            }
            // [::1] cannot be DNAT-ed into a bridge (IPv6 has no route_localnet): the
            // userland proxy serves it (see `ports`).
            if let Some(ip6) = p
                .container_ip6
                .filter(|_| b.covers_ipv6() && !b.needs_proxy())
            {
                let mut expr = vec![m("==", meta("nfproto"), json!("ipv6"))];
                if b.host_ip.is_ipv6() && !b.host_ip.is_unspecified() {
                    expr.push(m(
                        "==",
                        payload("ip6", "daddr"),
                        json!(b.host_ip.to_string()),
                    ));
                }
                expr.push(m("==", payload(l4, "dport"), json!(b.host_port)));
                expr.push(json!({"dnat": {"family": "ip6", "addr": ip6.to_string(),
                    "port": b.container_port}}));
                cmds.push(rule("published", expr));
            }
        }

        // postrouting
        for n in &desired.networks {
            let mut subnets = vec![("ip", prefix(&n.subnet))];
            if let Some(s6) = &n.subnet6 {
                subnets.push(("ip6", prefix6(s6)));
            }
            for (family, subnet) in subnets {
                if !n.internal {
                    cmds.push(rule(
                        "postrouting",
                        vec![
                            m("==", payload(family, "saddr"), subnet.clone()),
                            oif("!=", &n.bridge),
                            json!({"masquerade": null}),
                        ],
                    ));
                }
                // Hairpin: a container reaching a published port of its own bridge.
                cmds.push(rule(
                    "postrouting",
                    vec![
                        oif("==", &n.bridge),
                        m("==", payload(family, "saddr"), subnet),
                        m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                        json!({"masquerade": null}),
                    ],
                ));
            }
            cmds.push(rule(
                "postrouting",
                vec![
                    oif("==", &n.bridge),
                    m(
                        "==",
                        payload("ip", "saddr"),
                        json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                    ),
                    json!({"masquerade": null}),
                ],
            ));
        }
        json!({"nftables": cmds})
    }
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn iif(op: &str, name: &str) -> Value {
    m(op, meta("iifname"), json!(name))
}

fn oif(op: &str, name: &str) -> Value {
    m(op, meta("oifname"), json!(name))
}

fn prefix(net: &ipnet::Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

fn prefix6(net: &ipnet::Ipv6Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

impl Firewall for Nftables {
    /// Most changes (a container joining or leaving a network without published ports) leave
    /// the ruleset as it is, and running `nft` costs 10-40 ms per container start and stop.
    /// So the last transaction we applied is remembered with the kernel's ruleset generation
    /// right after it (a counter bumped by every ruleset change, by anyone, and reset by a
    /// reboot, hence the boot id): when both still match, the kernel has our rules exactly
    /// and there is nothing to do. Any doubt (another tool changed something, an unreadable
    /// generation) means applying.
    fn apply(&self, desired: &Desired) -> Result<(), FirewallError> {
        let doc = self.render(desired).to_string();
        let memo = self.memo_path();
        let before = memo.as_ref().and_then(|_| ruleset_generation());
        let key = |generation: u32| format!("{} {generation}\n{doc}", boot_id());
        if let (Some(path), Some(g)) = (&memo, before)
            && std::fs::read_to_string(path).is_ok_and(|m| m == key(g))
        {
            return Ok(());
        }
        if let Some(path) = &memo {
            let _ = std::fs::remove_file(path);
        }
        if let Some(path) = self.last_doc_path() {
            let _ = std::fs::remove_file(&path);
        }
        self.run(&doc)?;
        if let Some(path) = self.last_doc_path()
            && let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let tmp = path.with_extension("last-tmp");
            if std::fs::write(&tmp, &doc).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        // Only our own transaction in between (one generation step): remember it.
        if let (Some(path), Some(g0)) = (&memo, before)
            && let Some(g1) = ruleset_generation()
            && g1 == g0.wrapping_add(1)
            && let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, key(g1)).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        Ok(())
    }
}

impl Nftables {
    /// One `nft -j -f -` transaction.
    fn run(&self, doc: &str) -> Result<(), FirewallError> {
        let spawn_err = |source| FirewallError::Spawn {
            program: self.program.clone(),
            source,
        };
        let mut child = Command::new(&self.program)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(doc.as_bytes()).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if !out.status.success() {
            return Err(FirewallError::Rejected {
                table: self.table.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{FwNetwork, FwPort};
    use crate::ports::PortBinding;

    fn desired() -> Desired {
        Desired {
            networks: vec![
                FwNetwork {
                    name: "a".into(),
                    bridge: "br-a".into(),
                    subnet: "10.231.1.0/24".parse().unwrap(),
                    subnet6: Some("fd00:231:1::/64".parse().unwrap()),
                    internal: false,
                },
                FwNetwork {
                    name: "b".into(),
                    bridge: "br-b".into(),
                    subnet: "10.231.2.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: true,
                },
            ],
            // 127.0.0.1 → IPv4 only; 0.0.0.0 → both families; [::1] → the userland proxy.
            ports: [
                ("127.0.0.1", 8080, 80),
                ("0.0.0.0", 8081, 81),
                ("::1", 8082, 82),
            ]
            .into_iter()
            .map(|(host_ip, host_port, container_port)| FwPort {
                binding: PortBinding {
                    host_ip: host_ip.parse().unwrap(),
                    host_port,
                    container_port,
                    proto: Proto::Tcp,
                },
                container_ip: "10.231.1.2".parse().unwrap(),
                container_ip6: Some("fd00:231:1::2".parse().unwrap()),
                bridge: "br-a".into(),
            })
            .collect(),
        }
    }

    fn rules_of(doc: &Value, chain: &str) -> Vec<String> {
        doc["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["add"]["rule"]["chain"] == chain)
            .map(|c| c["add"]["rule"]["expr"].to_string())
            .collect()
    }

    /// Applies a real ruleset to a uniquely named table, then removes it (needs root and nft).
    #[test]
    fn the_kernel_accepts_the_ruleset_and_it_is_removed_again() {
        let table = format!("rctest_unit_{}", std::process::id());
        let fw = Nftables::new(&table);
        let list = || {
            Command::new("nft")
                .args(["list", "table", "inet", &table])
                .output()
                .unwrap()
        };
        fw.apply(&desired()).unwrap();
        let text = String::from_utf8_lossy(&list().stdout).to_string();
        let cleanup = fw.apply(&Desired::default());
        assert!(text.contains("dnat ip to 10.231.1.2:80"), "{text}");
        assert!(text.contains("masquerade"), "{text}");
        cleanup.unwrap();
        assert!(!list().status.success(), "table {table} is still there");
    }

    /// An unchanged apply is skipped; a change by anyone else (here our table deleted behind
    /// our back) makes the next apply run again (needs root and nft). Other processes may
    /// change the ruleset meanwhile (then applying again is right), hence a few attempts.
    #[test]
    fn unchanged_rulesets_are_not_applied_twice_unless_the_kernel_changed() {
        let table = format!("rctest_memo_{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runs");
        let wrapper = dir.path().join("nft-counting");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho run >> {}\nexec nft \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut fw = Nftables::new(&table).remembering_in(dir.path().join("memo"));
        fw.program = wrapper.display().to_string();
        let runs = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let nft = |args: &[&str]| Command::new("nft").args(args).output().unwrap();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let skipped = (0..5).any(|_| {
                fw.apply(&desired()).unwrap();
                let n = runs();
                fw.apply(&desired()).unwrap();
                runs() == n
            });
            assert!(skipped, "an unchanged ruleset was applied again every time");
            assert!(nft(&["delete", "table", "inet", &table]).status.success());
            let n = runs();
            fw.apply(&desired()).unwrap();
            assert_eq!(
                runs(),
                n + 1,
                "a changed kernel ruleset was not applied again"
            );
            assert!(nft(&["list", "table", "inet", &table]).status.success());
        }));
        let cleanup = fw.apply(&Desired::default());
        if let Err(panic) = res {
            std::panic::resume_unwind(panic);
        }
        cleanup.unwrap();
        assert!(!nft(&["list", "table", "inet", &table]).status.success());
    }

    #[test]
    fn empty_state_only_deletes_our_table() {
        let doc = Nftables::new("rc_test").render(&Desired::default());
        let cmds = doc["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1]["delete"]["table"]["name"], "rc_test");
    }

    #[test]
    fn renders_isolation_internal_masquerade_and_dnat() {
        let doc = Nftables::new("rc_test").render(&desired());
        let fwd = rules_of(&doc, "forward");
        // internal b: two drops; isolation: a->{b}, b->{a}
        assert!(
            fwd.iter()
                .any(|r| r.contains(r#""right":{"set":["br-b"]}"#))
        );
        assert!(
            fwd.iter()
                .any(|r| r.contains(r#""op":"!=""#) && r.contains("br-b"))
        );
        let post = rules_of(&doc, "postrouting");
        let masq_out: Vec<_> = post.iter().filter(|r| r.contains(r#""op":"!=""#)).collect();
        assert_eq!(
            masq_out.len(),
            2,
            "only the non-internal network masquerades out, over IPv4 and IPv6"
        );
        assert!(masq_out[0].contains("10.231.1.0"));
        assert!(masq_out[1].contains("fd00:231:1::"), "{}", masq_out[1]);
        let published = rules_of(&doc, "published");
        // 127.0.0.1:8080 → IPv4 only; 0.0.0.0:8081 → both families; [::1]:8082 → the proxy.
        assert_eq!(published.len(), 3, "{published:#?}");
        assert!(
            published[0].contains(r#""addr":"10.231.1.2","port":80"#),
            "{}",
            published[0]
        );
        assert!(published[0].contains(r#""right":"127.0.0.1""#));
        assert!(
            published[2].contains(r#""family":"ip6","addr":"fd00:231:1::2","port":81"#),
            "{}",
            published[2]
        );
        // Every command names our table and nothing else.
        for c in doc["nftables"].as_array().unwrap() {
            let s = c.to_string();
            assert!(s.contains("rc_test"), "{s}");
        }
    }
}
