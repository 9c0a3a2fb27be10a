//! DNS wire format around the lookup core: parse a query with hickory-proto, ask the table,
//! build the reply. Still free of sockets, so it is unit-tested with real packets.

use std::net::Ipv4Addr;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::table::{Answer, DnsTable, QueryType};

/// TTL of our answers: short, because containers come and go.
const TTL: u32 = 600;

/// What to do with one packet.
#[derive(Debug)]
pub enum Reply {
    /// Send these bytes back.
    Local(Vec<u8>),
    /// Relay the original packet to an upstream resolver; `id` lets the caller build SERVFAIL.
    Forward { id: u16 },
    /// Unparseable beyond repair: say nothing.
    Drop,
}

pub fn answer(
    table: &DnsTable,
    packet: &[u8],
    listen: Ipv4Addr,
    source: Ipv4Addr,
    rotate: usize,
    can_forward: bool,
) -> Reply {
    let Ok(request) = Message::from_vec(packet) else {
        // Answer FORMERR when at least the id is readable.
        return match packet.get(0..2) {
            Some(id) => Reply::Local(error(
                u16::from_be_bytes([id[0], id[1]]),
                ResponseCode::FormErr,
            )),
            None => Reply::Drop,
        };
    };
    if request.message_type() != MessageType::Query {
        return Reply::Drop;
    }
    let Some(query) = request.queries().first() else {
        return Reply::Local(error(request.id(), ResponseCode::FormErr));
    };
    let qtype = match query.query_type() {
        RecordType::A => QueryType::A,
        RecordType::AAAA => QueryType::Aaaa,
        RecordType::PTR => QueryType::Ptr,
        _ => QueryType::Other,
    };
    let qname = query.name().to_ascii();
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(can_forward)
        .add_query(query.clone());
    match table.lookup(listen, source, &qname, qtype, rotate, can_forward) {
        Answer::Forward => return Reply::Forward { id: request.id() },
        Answer::A(ips) => {
            reply.set_authoritative(true);
            for ip in ips {
                reply.add_answer(Record::from_rdata(
                    query.name().clone(),
                    TTL,
                    RData::A(A(ip)),
                ));
            }
        }
        Answer::Aaaa(ips) => {
            reply.set_authoritative(true);
            for ip in ips {
                reply.add_answer(Record::from_rdata(
                    query.name().clone(),
                    TTL,
                    RData::AAAA(AAAA(ip)),
                ));
            }
        }
        Answer::Ptr(target) => {
            let Ok(name) = Name::from_str(&format!("{target}.")) else {
                return Reply::Local(error(request.id(), ResponseCode::ServFail));
            };
            reply.set_authoritative(true);
            reply.add_answer(Record::from_rdata(
                query.name().clone(),
                TTL,
                RData::PTR(PTR(name)),
            ));
        }
        Answer::NoData => {
            reply.set_authoritative(true);
        }
        Answer::NxDomain => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Answer::Refused => {
            reply.set_response_code(ResponseCode::Refused);
        }
    }
    match reply.to_vec() {
        Ok(bytes) => Reply::Local(bytes),
        Err(_) => Reply::Local(error(request.id(), ResponseCode::ServFail)),
    }
}

/// A bare error reply.
pub fn error(id: u16, code: ResponseCode) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .set_response_code(code);
    // A header-only message always encodes.
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::table::{DnsEntry, DnsNetwork};
    use hickory_proto::op::Query;

    fn table() -> DnsTable {
        DnsTable {
            networks: vec![DnsNetwork {
                name: "n".into(),
                gateway: [10, 0, 1, 1].into(),
                subnet: "10.0.1.0/24".parse().unwrap(),
                internal: false,
                entries: vec![DnsEntry {
                    container_id: "c1".into(),
                    names: vec!["web".into()],
                    ip: [10, 0, 1, 2].into(),
                    ip6: None,
                }],
            }],
        }
    }

    fn ask(name: &str, rtype: RecordType, can_forward: bool) -> Reply {
        let mut q = Message::new();
        q.set_id(4242)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_str(name).unwrap(), rtype));
        answer(
            &table(),
            &q.to_vec().unwrap(),
            [10, 0, 1, 1].into(),
            [10, 0, 1, 9].into(),
            0,
            can_forward,
        )
    }

    fn parsed(r: Reply) -> Message {
        match r {
            Reply::Local(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected a local reply, got {other:?}"),
        }
    }

    #[test]
    fn a_records_ptr_and_nxdomain_round_trip_through_the_wire() {
        let m = parsed(ask("web.", RecordType::A, false));
        assert_eq!(m.id(), 4242);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert_eq!(m.answers()[0].data(), &RData::A(A([10, 0, 1, 2].into())));
        let p = parsed(ask("2.1.0.10.in-addr.arpa.", RecordType::PTR, false));
        assert_eq!(p.answers()[0].data().to_string(), "web.");
        let nx = parsed(ask("nosuch.", RecordType::A, false));
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        let aaaa = parsed(ask("web.", RecordType::AAAA, false));
        assert_eq!(
            (aaaa.response_code(), aaaa.answers().len()),
            (ResponseCode::NoError, 0)
        );
        assert!(matches!(
            ask("example.org.", RecordType::A, true),
            Reply::Forward { id: 4242 }
        ));
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        match answer(
            &table(),
            &[0x12, 0x34, 0xff],
            [10, 0, 1, 1].into(),
            [10, 0, 1, 9].into(),
            0,
            false,
        ) {
            Reply::Local(b) => {
                let m = Message::from_vec(&b).unwrap();
                assert_eq!((m.id(), m.response_code()), (0x1234, ResponseCode::FormErr));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer(
                &table(),
                &[1],
                [10, 0, 1, 1].into(),
                [10, 0, 1, 9].into(),
                0,
                false
            ),
            Reply::Drop
        ));
    }
}
