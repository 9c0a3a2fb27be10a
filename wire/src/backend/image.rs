//! The engine's view of an image (`ImageInfo`) from a record in the local image store.

use anyhow::{Context, Result};
use rcompose_engine::container::ImageInfo;
use rcompose_engine::container::model::HealthConfig;
use serde_json::Value;

/// Resolves `reference` in the store under `root`; a clear error when it is not there.
pub fn image_info(root: &std::path::Path, reference: &str, service: &str) -> Result<ImageInfo> {
    let store = rcompose_engine::store::Store::open(root)?;
    let rec = store.resolve(reference).with_context(|| {
        format!(
            "service \"{service}\": image {reference} not found locally; load, import or pull it first (`rcompose image load`, `rcompose image pull {reference}`)"
        )
    })?;
    let c = &rec.config_json["config"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let hc = &c["Healthcheck"];
    let nanos_to_ms = |v: &Value| v.as_u64().unwrap_or(0) / 1_000_000;
    Ok(ImageInfo {
        reference: reference.to_string(),
        id: rec.id.clone(),
        layer_dirs: rec.layer_dirs.clone(),
        entrypoint: strs(&c["Entrypoint"]),
        cmd: strs(&c["Cmd"]),
        env: strs(&c["Env"]),
        working_dir: s(&c["WorkingDir"]),
        user: s(&c["User"]),
        stop_signal: s(&c["StopSignal"]),
        labels: c["Labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default(),
        volumes: c["Volumes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        healthcheck: hc["Test"].as_array().map(|_| HealthConfig {
            test: strs(&hc["Test"]),
            interval_ms: nanos_to_ms(&hc["Interval"]),
            timeout_ms: nanos_to_ms(&hc["Timeout"]),
            start_period_ms: nanos_to_ms(&hc["StartPeriod"]),
            retries: hc["Retries"].as_u64().unwrap_or(0) as u32,
        }),
    })
}

/// The id of `reference` in the local store, `None` when absent.
pub fn image_id(root: &std::path::Path, reference: &str) -> Result<Option<String>> {
    let store = rcompose_engine::store::Store::open(root)?;
    Ok(store.resolve_id(reference).ok())
}
