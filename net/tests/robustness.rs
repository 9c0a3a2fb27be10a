//! The DNS server's message handling (issue 15): random packets never panic, and a container
//! on an internal network never gets a question forwarded upstream, whatever it asks
//! (CVE-2024-29018: Docker forwarded such questions through the host's resolver).
//! `PROPTEST_CASES=20000 cargo test -p rcompose-net --test robustness` runs it longer.

use std::str::FromStr;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;
use rcompose_net::dns::message::{Reply, answer};
use rcompose_net::dns::table::{DnsEntry, DnsNetwork, DnsTable};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

/// Two networks on one gateway set: `open` (10.0.1.0/24) and `inner` (internal, 10.0.2.0/24).
fn table() -> DnsTable {
    let net = |name: &str, third: u8, internal: bool| DnsNetwork {
        name: name.into(),
        gateway: [10, 0, third, 1].into(),
        subnet: format!("10.0.{third}.0/24").parse().unwrap(),
        internal,
        entries: vec![DnsEntry {
            container_id: format!("c{third}"),
            names: vec!["web".into(), format!("svc{third}")],
            ip: [10, 0, third, 2].into(),
            ip6: None,
        }],
    };
    DnsTable {
        networks: vec![net("open", 1, false), net("inner", 2, true)],
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_packets_never_panic(
        packet in prop::collection::vec(any::<u8>(), 0..300),
        third in 1u8..3,
        forward in any::<bool>(),
    ) {
        let _ = answer(
            &table(),
            &packet,
            [10, 0, third, 1].into(),
            [10, 0, third, 9].into(),
            0,
            forward,
        );
    }

    #[test]
    fn internal_networks_never_forward(
        labels in prop::collection::vec("[a-z0-9-]{1,20}", 1..5),
        rtype in prop::sample::select(vec![
            RecordType::A, RecordType::AAAA, RecordType::PTR, RecordType::MX, RecordType::TXT,
            RecordType::SRV, RecordType::ANY, RecordType::CNAME, RecordType::NS,
        ]),
        rotate in any::<usize>(),
    ) {
        let name = labels.join(".") + ".";
        let Ok(name) = Name::from_str(&name) else { return Ok(()); };
        let mut q = Message::new();
        q.set_id(7).set_recursion_desired(true).add_query(Query::query(name, rtype));
        let packet = q.to_vec().unwrap();
        let reply = answer(
            &table(),
            &packet,
            [10, 0, 2, 1].into(),
            [10, 0, 2, 9].into(),
            rotate,
            true,
        );
        prop_assert!(!matches!(reply, Reply::Forward { .. }), "forwarded {:?}", q.queries());
        // The same question from the open network may go out: the table is not refusing all.
        let _ = answer(&table(), &packet, [10, 0, 1, 1].into(), [10, 0, 1, 9].into(), rotate, true);
    }
}

/// The proptest above is only meaningful if the open network does forward outside names.
#[test]
fn the_open_network_forwards_outside_names() {
    let mut q = Message::new();
    q.set_id(7)
        .set_recursion_desired(true)
        .add_query(Query::query(
            Name::from_str("example.org.").unwrap(),
            RecordType::A,
        ));
    let packet = q.to_vec().unwrap();
    let open = answer(
        &table(),
        &packet,
        [10, 0, 1, 1].into(),
        [10, 0, 1, 9].into(),
        0,
        true,
    );
    assert!(matches!(open, Reply::Forward { .. }), "{open:?}");
    let inner = answer(
        &table(),
        &packet,
        [10, 0, 2, 1].into(),
        [10, 0, 2, 9].into(),
        0,
        true,
    );
    assert!(!matches!(inner, Reply::Forward { .. }), "{inner:?}");
}
