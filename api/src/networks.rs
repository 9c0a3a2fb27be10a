//! Network endpoints over `rcompose_net::Networks`, as `rcompose network …`.

use std::collections::BTreeMap;

use rcompose_net::network::inspect_predefined;
use rcompose_net::{CreateRequest, ipam};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::{Context, filters};

fn body(req: &Request) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    Ok(serde_json::from_slice(&req.body)?)
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a network (as inspected) passes docker's `network ls` filters.
fn matches(n: &Value, f: &str) -> Result<bool, ApiError> {
    let (k, v) = f.split_once('=').unwrap_or((f, ""));
    let s = |key: &str| n[key].as_str().unwrap_or_default().to_string();
    Ok(match k {
        "name" => s("Name").contains(v),
        "id" => s("Id").starts_with(v),
        "driver" => s("Driver") == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => n["Labels"][lk].as_str() == Some(lv),
            None => !n["Labels"][v].is_null(),
        },
        "type" => {
            let builtin = matches!(s("Name").as_str(), "bridge" | "host" | "none");
            match v {
                "builtin" => builtin,
                "custom" => !builtin,
                _ => return Err(ApiError::bad_request(format!("invalid filter 'type={v}'"))),
            }
        }
        "scope" => v == "local",
        "dangling" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid filter '{other}': use name, id, driver, label or type"
            )));
        }
    })
}

/// `GET /networks`: ours and docker's predefined `host` and `none`.
pub fn list(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let nets = ctx.nets()?;
    let filters = filters(req)?;
    let mut all = vec![];
    for n in nets.list()? {
        all.push(as_docker(&n, nets.inspect(&n.id)?));
    }
    all.push(inspect_predefined("host"));
    all.push(inspect_predefined("none"));
    let mut out = vec![];
    for n in all {
        let mut keep = true;
        for f in &filters {
            keep &= matches(&n, f)?;
        }
        if keep {
            out.push(n);
        }
    }
    Ok(Response::json(200, Value::Array(out)))
}

pub fn inspect(ctx: &Context, name: &str) -> Result<Response, ApiError> {
    if matches!(name, "host" | "none") {
        return Ok(Response::json(200, inspect_predefined(name)));
    }
    let nets = ctx.nets()?;
    let v = nets.inspect(name)?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    match nets.list()?.into_iter().find(|n| n.id == id) {
        Some(n) => Ok(Response::json(200, as_docker(&n, v))),
        None => Ok(Response::json(200, v)),
    }
}

/// The bridge's name is an option only when the user chose it (as in docker, whose user
/// networks do not list it): docker-compose 1.29 compares a network's options with the
/// file's `driver_opts` and refuses one with an option the file lacks.
fn as_docker(n: &rcompose_net::network::Network, mut v: Value) -> Value {
    const KEY: &str = "com.docker.network.bridge.name";
    if n.name != "bridge"
        && !n.options.contains_key(KEY)
        && let Some(o) = v["Options"].as_object_mut()
    {
        o.remove(KEY);
    }
    v
}

/// `POST /networks/create` (`docker network create`, compose's project networks).
pub fn create(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let b = body(req)?;
    let name = b["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("network name is required"))?;
    let cfg = b["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    let (mut subnet, mut gateway, mut ip_range, mut subnet6, mut gateway6) =
        (None, None, None, None, None);
    for c in &cfg {
        let sub = c["Subnet"].as_str().unwrap_or_default();
        let gw = c["Gateway"].as_str().filter(|g| !g.is_empty());
        if sub.contains(':') {
            subnet6 = Some(sub.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid subnet {sub:?}: not an IPv6 CIDR"))
            })?);
            gateway6 = gw
                .map(|g| {
                    g.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid gateway {g:?}: not an IPv6 address"))
                    })
                })
                .transpose()?;
        } else if !sub.is_empty() {
            let bad = |e: ipam::IpamError| ApiError::bad_request(e.to_string());
            subnet = Some(ipam::parse_subnet(sub).map_err(bad)?);
            gateway = gw.map(ipam::parse_addr).transpose().map_err(bad)?;
            ip_range = c["IPRange"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(ipam::parse_subnet)
                .transpose()
                .map_err(bad)?;
        }
    }
    let req = CreateRequest {
        name: name.to_string(),
        driver: b["Driver"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(String::from),
        subnet,
        gateway,
        ip_range,
        ipv6: b["EnableIPv6"].as_bool().unwrap_or(false),
        subnet6,
        gateway6,
        internal: b["Internal"].as_bool().unwrap_or(false),
        attachable: b["Attachable"].as_bool().unwrap_or(false),
        labels: str_map(&b["Labels"]),
        options: str_map(&b["Options"]),
    };
    let net = ctx.nets()?.create(req)?;
    Ok(Response::json(201, json!({"Id": net.id, "Warning": ""})))
}

pub fn remove(ctx: &Context, name: &str) -> Result<Response, ApiError> {
    ctx.nets()?.remove(name)?;
    Ok(Response::empty(204))
}

/// `POST /networks/prune?filters={"label":…}`.
pub fn prune(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let mut labels = vec![];
    for f in filters(req)? {
        match f.split_once('=') {
            Some(("label", v)) => labels.push(v.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter {f:?}: only label=<key> or label=<key>=<value> is supported"
                )));
            }
        }
    }
    let removed = ctx.nets()?.prune(&labels)?;
    Ok(Response::json(200, json!({"NetworksDeleted": removed})))
}

/// `POST /networks/{id}/connect` `{"Container": …, "EndpointConfig": {"Aliases": …,
/// "IPAMConfig": {"IPv4Address": …}}}`.
pub fn connect(ctx: &Context, req: &Request, network: &str) -> Result<Response, ApiError> {
    let b = body(req)?;
    let container = b["Container"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("the request names no Container"))?;
    let ep = &b["EndpointConfig"];
    let aliases: Vec<String> = ep["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let addr = |k: &str| ep["IPAMConfig"][k].as_str().filter(|a| !a.is_empty());
    rcompose_wire::netwire::live::connect(
        &ctx.engine(),
        &ctx.nets()?,
        container,
        network,
        &aliases,
        addr("IPv4Address"),
        addr("IPv6Address"),
    )?;
    Ok(Response::empty(200))
}

pub fn disconnect(ctx: &Context, req: &Request, network: &str) -> Result<Response, ApiError> {
    let b = body(req)?;
    let container = b["Container"]
        .as_str()
        .ok_or_else(|| ApiError::bad_request("the request names no Container"))?;
    rcompose_wire::netwire::live::disconnect(&ctx.engine(), &ctx.nets()?, container, network)?;
    Ok(Response::empty(200))
}
