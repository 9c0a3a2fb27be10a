use super::*;

/// `iptables -S` on a host where Docker 20.10 runs.
const DOCKER_HOST: &str = "\
-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-ISOLATION-STAGE-2
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
";

const CLEAN_HOST: &str = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n";

fn bridges(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Applies a restore script to a parsed table the way iptables-restore --noflush does, for
/// the few commands `plan` writes, so that plans can be checked for convergence.
fn simulate(table: &FilterTable, script: &str) -> FilterTable {
    let mut t = table.clone();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [decl, ..] if decl.starts_with(':') => {
                let chain = decl.trim_start_matches(':').to_string();
                t.rules.retain(|(c, _)| *c != chain);
                t.chains.insert(chain);
            }
            ["-A", chain, ..] => t.rules.push((chain.to_string(), line.to_string())),
            ["-I", chain, "1", rest @ ..] => {
                let at = t.rules.iter().position(|(c, _)| c == chain).unwrap_or(0);
                let l = format!("-A {chain} {}", rest.join(" "));
                t.rules.insert(at, (chain.to_string(), l));
            }
            ["-D", chain, rest @ ..] => {
                let l = format!("-A {chain} {}", rest.join(" "));
                let at = t
                    .rules
                    .iter()
                    .position(|(c, r)| c == chain && *r == l)
                    .unwrap();
                t.rules.remove(at);
            }
            ["-X", chain] => {
                assert!(
                    t.rules
                        .iter()
                        .all(|(c, r)| c != chain && !is_jump_to(r, chain))
                );
                t.chains.remove(*chain);
            }
            ["*filter"] | ["COMMIT"] => {}
            other => panic!("unexpected line {other:?}"),
        }
    }
    t
}

#[test]
fn parses_policies_chains_and_rules() {
    let t = FilterTable::parse(DOCKER_HOST);
    assert_eq!(t.policies["FORWARD"], "DROP");
    assert!(t.chains.contains("DOCKER-USER"));
    assert_eq!(t.rules_of("DOCKER-USER"), vec!["-A DOCKER-USER -j RETURN"]);
    assert!(t.may_drop("FORWARD", "RCOMPOSE-FORWARD"));
    assert!(!t.may_drop("INPUT", "RCOMPOSE-INPUT"));
}

#[test]
fn a_clean_host_is_left_alone() {
    let t = FilterTable::parse(CLEAN_HOST);
    assert_eq!(plan(&t, "RCOMPOSE", &bridges(&["br-a"])), None);
    assert_eq!(plan(&t, "RCOMPOSE", &[]), None);
}

#[test]
fn next_to_docker_our_chain_hangs_off_docker_user() {
    let t = FilterTable::parse(DOCKER_HOST);
    let script = plan(&t, "RC-1a2b3c4d", &bridges(&["br-a", "br-b"])).unwrap();
    assert_eq!(
        script,
        "*filter
:RC-1a2b3c4d-FORWARD - [0:0]
-A RC-1a2b3c4d-FORWARD -i br-a -j ACCEPT
-A RC-1a2b3c4d-FORWARD -o br-a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A RC-1a2b3c4d-FORWARD -o br-a -m conntrack --ctstate DNAT -j ACCEPT
-A RC-1a2b3c4d-FORWARD -i br-b -j ACCEPT
-A RC-1a2b3c4d-FORWARD -o br-b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A RC-1a2b3c4d-FORWARD -o br-b -m conntrack --ctstate DNAT -j ACCEPT
-I DOCKER-USER 1 -j RC-1a2b3c4d-FORWARD
COMMIT
"
    );
    // Docker's own rules are neither flushed nor deleted.
    let after = simulate(&t, &script);
    for (chain, rule) in &t.rules {
        assert!(after.rules.contains(&(chain.clone(), rule.clone())));
    }
    assert_eq!(
        after.rules_of("DOCKER-USER")[0],
        "-A DOCKER-USER -j RC-1a2b3c4d-FORWARD"
    );
    // Applied once, nothing more to do.
    assert_eq!(
        plan(&after, "RC-1a2b3c4d", &bridges(&["br-a", "br-b"])),
        None
    );
}

#[test]
fn a_plain_forward_drop_gets_a_jump_from_forward_and_ufw_input_gets_dns() {
    let t = FilterTable::parse(
        "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N ufw-before-input\n-A INPUT -j ufw-before-input\n",
    );
    let script = plan(&t, "RCOMPOSE", &bridges(&["rcompose0"])).unwrap();
    assert!(
        script.contains("-I FORWARD 1 -j RCOMPOSE-FORWARD\n"),
        "{script}"
    );
    assert!(
        script.contains("-I INPUT 1 -j RCOMPOSE-INPUT\n"),
        "{script}"
    );
    assert!(script.contains("-A RCOMPOSE-INPUT -i rcompose0 -p udp -m udp --dport 53 -j ACCEPT"));
    let after = simulate(&t, &script);
    assert_eq!(plan(&after, "RCOMPOSE", &bridges(&["rcompose0"])), None);
}

#[test]
fn a_changed_network_set_rebuilds_only_our_chain() {
    let t = simulate(
        &FilterTable::parse(DOCKER_HOST),
        &plan(
            &FilterTable::parse(DOCKER_HOST),
            "RCOMPOSE",
            &bridges(&["br-a"]),
        )
        .unwrap(),
    );
    let script = plan(&t, "RCOMPOSE", &bridges(&["br-b"])).unwrap();
    assert!(
        script.starts_with("*filter\n:RCOMPOSE-FORWARD - [0:0]\n"),
        "{script}"
    );
    assert!(
        !script.contains("-I DOCKER-USER"),
        "the jump is there already: {script}"
    );
    let after = simulate(&t, &script);
    assert!(
        after
            .rules_of("RCOMPOSE-FORWARD")
            .iter()
            .all(|r| r.contains("br-b"))
    );
}

#[test]
fn duplicates_and_stray_jumps_are_removed_and_never_added_twice() {
    let mut t = FilterTable::parse(DOCKER_HOST);
    let script = plan(&t, "RCOMPOSE", &bridges(&["br-a"])).unwrap();
    t = simulate(&t, &script);
    // Someone added a second jump, and one from FORWARD (e.g. left from before Docker ran).
    t.rules.insert(
        0,
        (
            "DOCKER-USER".into(),
            "-A DOCKER-USER -j RCOMPOSE-FORWARD".into(),
        ),
    );
    t.rules.insert(
        0,
        ("FORWARD".into(), "-A FORWARD -j RCOMPOSE-FORWARD".into()),
    );
    let script = plan(&t, "RCOMPOSE", &bridges(&["br-a"])).unwrap();
    let after = simulate(&t, &script);
    assert_eq!(
        after
            .jumps_to("RCOMPOSE-FORWARD")
            .into_iter()
            .collect::<Vec<_>>(),
        vec![("DOCKER-USER".to_string(), 1)]
    );
    assert_eq!(plan(&after, "RCOMPOSE", &bridges(&["br-a"])), None);
}

#[test]
fn the_last_network_gone_removes_exactly_what_we_added() {
    let t0 = FilterTable::parse(DOCKER_HOST);
    let t1 = simulate(&t0, &plan(&t0, "RCOMPOSE", &bridges(&["br-a"])).unwrap());
    let script = plan(&t1, "RCOMPOSE", &[]).unwrap();
    assert_eq!(
        script,
        "*filter\n:RCOMPOSE-FORWARD - [0:0]\n-D DOCKER-USER -j RCOMPOSE-FORWARD\n-X RCOMPOSE-FORWARD\nCOMMIT\n"
    );
    assert_eq!(simulate(&t1, &script), t0);
}

#[test]
fn chain_names_fit_iptables_limits() {
    assert_eq!(chain_prefix("rcompose"), "RCOMPOSE");
    assert_eq!(chain_prefix("rcompose_0badcafe"), "RC-0badcafe");
    assert!(format!("{}-FORWARD", chain_prefix("rcompose_0badcafe")).len() <= 28);
}

/// Against the real kernel (root, iptables): inside a private network namespace set up as
/// Docker leaves a host, our chain is added, kept once, and removed without a trace.
#[test]
fn real_iptables_in_a_private_namespace() {
    let Some(program) = find_program("iptables-nft") else {
        eprintln!("skipped: iptables-nft is not installed");
        return;
    };
    let ns = format!("rcfwunit{}", std::process::id());
    let ip = |args: &[&str]| Command::new("ip").args(args).status().unwrap();
    assert!(ip(&["netns", "add", &ns]).success());
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            // SAFETY: setns on a valid fd; it affects only this scoped thread.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0);
            let ipt = |args: &[&str]| run(&program, args, None).unwrap();
            ipt(&["-N", "DOCKER-USER"]);
            ipt(&["-A", "DOCKER-USER", "-j", "RETURN"]);
            ipt(&["-A", "FORWARD", "-j", "DOCKER-USER"]);
            ipt(&["-P", "FORWARD", "DROP"]);
            let before = ipt(&["-S"]);
            let chains = HostChains::new("RC-unit");
            chains.apply(&bridges(&["rcu-a"]), &[]).unwrap();
            chains.apply(&bridges(&["rcu-a"]), &[]).unwrap();
            let applied = ipt(&["-S"]);
            chains.apply(&[], &[]).unwrap();
            let after = ipt(&["-S"]);
            (before, applied, after)
        })
        .join()
    });
    ip(&["netns", "del", &ns]);
    let (before, applied, after) = result.unwrap();
    let t = FilterTable::parse(&applied);
    assert_eq!(
        t.rules_of("DOCKER-USER"),
        vec![
            "-A DOCKER-USER -j RC-unit-FORWARD",
            "-A DOCKER-USER -j RETURN"
        ],
        "{applied}"
    );
    assert_eq!(
        t.rules_of("RC-unit-FORWARD"),
        wanted_rules("RC-unit-FORWARD", "FORWARD", &bridges(&["rcu-a"]))
    );
    assert_eq!(before, after);
}
