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
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Desired, Firewall, FirewallError};
use crate::ports::Proto;

pub struct Nftables {
    table: String,
    program: String,
}

impl Nftables {
    /// `table` is the name of our `inet` table (e.g. `rcompose`).
    pub fn new(table: impl Into<String>) -> Nftables {
        Nftables {
            table: table.into(),
            program: "nft".into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
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

        // postrouting
        for n in &desired.networks {
            let subnet = prefix(&n.subnet);
            if !n.internal {
                cmds.push(rule(
                    "postrouting",
                    vec![
                        m("==", payload("ip", "saddr"), subnet.clone()),
                        oif("!=", &n.bridge),
                        json!({"masquerade": null}),
                    ],
                ));
            }
            cmds.push(rule(
                "postrouting",
                vec![
                    oif("==", &n.bridge),
                    m("==", payload("ip", "saddr"), subnet),
                    m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                    json!({"masquerade": null}),
                ],
            ));
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

impl Firewall for Nftables {
    fn apply(&self, desired: &Desired) -> Result<(), FirewallError> {
        let doc = self.render(desired).to_string();
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
                    internal: false,
                },
                FwNetwork {
                    name: "b".into(),
                    bridge: "br-b".into(),
                    subnet: "10.231.2.0/24".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: vec![FwPort {
                binding: PortBinding {
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_port: 8080,
                    container_port: 80,
                    proto: Proto::Tcp,
                },
                container_ip: "10.231.1.2".parse().unwrap(),
                bridge: "br-a".into(),
            }],
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
            1,
            "only the non-internal network masquerades out"
        );
        assert!(masq_out[0].contains("10.231.1.0"));
        let published = rules_of(&doc, "published");
        assert_eq!(published.len(), 1);
        assert!(
            published[0].contains(r#""addr":"10.231.1.2","port":80"#),
            "{}",
            published[0]
        );
        assert!(published[0].contains(r#""right":"127.0.0.1""#));
        // Every command names our table and nothing else.
        for c in doc["nftables"].as_array().unwrap() {
            let s = c.to_string();
            assert!(s.contains("rc_test"), "{s}");
        }
    }
}
