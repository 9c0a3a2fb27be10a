//! The tasks of a stack as `docker stack ps` lists them: one row per task, named
//! `<service>.<slot>` (or `<service>.<node>` for global services), newest first within a slot.

use std::collections::BTreeMap;

use super::{Client, StackError, client, label, s};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub id: String,
    /// `<service>.<slot>`; repeated for older tasks of the same slot.
    pub name: String,
    pub image: String,
    /// The node's hostname (its id when the node is gone).
    pub node: String,
    pub desired_state: String,
    pub state: String,
    /// RFC 3339 time of the last state change.
    pub since: String,
    pub error: String,
    /// Published host-mode ports, `*:8080->80/tcp`.
    pub ports: Vec<String>,
}

/// `filters` are the API's (`stack ps -f desired-state=running`).
pub fn tasks(
    c: &Client,
    namespace: &str,
    filters: &[(String, String)],
) -> Result<Vec<TaskRow>, StackError> {
    let mut pairs = vec![("label".to_string(), label(namespace))];
    pairs.extend(filters.iter().cloned());
    let list = match c.get(&format!("/tasks?{}", client::filter_query(&pairs)))? {
        serde_json::Value::Array(a) => a,
        _ => Vec::new(),
    };
    let services: BTreeMap<String, String> = super::objects(c, "services", namespace)?
        .iter()
        .map(|x| (s(&x["ID"]), s(&x["Spec"]["Name"])))
        .collect();
    let nodes: BTreeMap<String, String> = c
        .get("/nodes")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (s(&n["ID"]), s(&n["Description"]["Hostname"])))
        .collect();
    let mut rows: Vec<(String, u64, String, TaskRow)> = list
        .iter()
        .map(|t| {
            let sid = s(&t["ServiceID"]);
            let service = services.get(&sid).cloned().unwrap_or(sid);
            let slot = t["Slot"].as_u64().unwrap_or(0);
            let node_id = s(&t["NodeID"]);
            let name = if slot > 0 {
                format!("{service}.{slot}")
            } else {
                format!("{service}.{node_id}")
            };
            let ports = t["Status"]["PortStatus"]["Ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "*:{}->{}/{}",
                        p["PublishedPort"],
                        p["TargetPort"],
                        p["Protocol"].as_str().unwrap_or("tcp")
                    )
                })
                .collect();
            let row = TaskRow {
                id: s(&t["ID"]),
                name: name.clone(),
                image: s(&t["Spec"]["ContainerSpec"]["Image"]),
                node: nodes.get(&node_id).cloned().unwrap_or(node_id),
                desired_state: s(&t["DesiredState"]),
                state: s(&t["Status"]["State"]),
                since: s(&t["Status"]["Timestamp"]),
                error: s(&t["Status"]["Err"]),
                ports,
            };
            (name, slot, s(&t["CreatedAt"]), row)
        })
        .collect();
    // By name, then the newest task of a slot first (RFC 3339 times sort as text).
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)).then(b.2.cmp(&a.2)));
    Ok(rows.into_iter().map(|r| r.3).collect())
}
