use std::path::Path;

use super::*;

const STACK: &str = r#"
services:
  web:
    image: example/web:1
    command: ["httpd", "-f"]
    entrypoint: ["/bin/sh", "-c"]
    ports: ["8080:80", {target: 443, published: 8443, mode: host}]
    environment: {B: "2", A: "1"}
    labels: {com.example.container: "c"}
    depends_on: [api]
    build: .
    container_name: web1
    extra_hosts: ["db.local=10.0.0.9"]
    healthcheck:
      test: ["CMD", "wget", "-q", "http://localhost/"]
      interval: 10s
      timeout: 3s
      retries: 4
      start_period: 1m
    deploy:
      replicas: 3
      labels: {com.example.service: "s"}
      resources:
        limits: {cpus: "0.5", memory: 256M, pids: 100}
        reservations: {cpus: "0.25", memory: 64M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      update_config: {parallelism: 2, delay: 10s, order: start-first, failure_action: rollback}
      rollback_config: {monitor: 30s}
      placement:
        constraints: ["node.role==manager"]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
    networks:
      front: {aliases: [www]}
      default: {}
    volumes: ["data:/data:ro", "/srv/static:/static", {type: tmpfs, target: /tmp, tmpfs: {size: 1m}}]
    secrets: [token, {source: cert, target: tls.pem, mode: 0400}]
    configs: [conf]
  api:
    image: example/api:2
    restart: on-failure:4
    deploy:
      mode: global
      endpoint_mode: dnsrr
networks:
  front: {driver_opts: {encrypted: ""}, attachable: true, labels: {tier: front}}
  outside: {external: true, name: shared}
volumes:
  data: {driver_opts: {type: tmpfs, device: tmpfs}}
secrets:
  token: {file: ./token.txt}
  cert: {external: true, name: site_cert}
configs:
  conf: {content: "x = 1"}
"#;

fn project(yaml: &str, name: &str) -> Project {
    let opts = crate::load::LoadOptions {
        files: vec!["-".into()],
        project_name: Some(name.into()),
        working_dir: std::env::temp_dir(),
        interpolate: true,
        stdin: Some(yaml.into()),
        ..Default::default()
    };
    crate::load::load(&opts).expect("test file loads").project
}

fn reader(p: &Path) -> std::io::Result<Vec<u8>> {
    if p.ends_with("token.txt") {
        Ok(b"tok".to_vec())
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

fn stack() -> Stack {
    convert(&project(STACK, "shop"), "shop", &reader).expect("converts")
}

fn service<'a>(s: &'a Stack, name: &str) -> &'a Value {
    &s.services.iter().find(|x| x.name == name).expect(name).spec
}

#[test]
fn names_and_labels_follow_docker_stack() {
    let s = stack();
    let names: Vec<&str> = s.services.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["shop_api", "shop_web"]);
    let web = service(&s, "shop_web");
    assert_eq!(web["Name"], "shop_web");
    assert_eq!(web["Labels"][NAMESPACE_LABEL], "shop");
    assert_eq!(web["Labels"]["com.example.service"], "s");
    assert_eq!(web["Labels"][IMAGE_LABEL], "example/web:1");
    // Container labels are not service labels.
    assert!(web["Labels"].get("com.example.container").is_none());
    let cs = &web["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Labels"]["com.example.container"], "c");
    assert_eq!(cs["Labels"][NAMESPACE_LABEL], "shop");
    assert_eq!(cs["Command"], json!(["/bin/sh", "-c"]));
    assert_eq!(cs["Args"], json!(["httpd", "-f"]));
    assert_eq!(cs["Env"], json!(["A=1", "B=2"]));
    assert_eq!(cs["Hosts"], json!(["10.0.0.9 db.local"]));
}

#[test]
fn networks_are_overlays_of_the_stack_and_external_ones_are_referenced() {
    let s = stack();
    let nets: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nets, ["shop_default", "shop_front"]);
    let front = &s.networks[1].spec;
    assert_eq!(front["Driver"], "overlay");
    assert_eq!(front["Attachable"], true);
    assert_eq!(front["Labels"]["tier"], "front");
    assert_eq!(front["Labels"][NAMESPACE_LABEL], "shop");
    assert_eq!(front["Options"]["encrypted"], "");
    let web = service(&s, "shop_web");
    assert_eq!(
        web["TaskTemplate"]["Networks"],
        json!([
            {"Target": "shop_default", "Aliases": ["web"]},
            {"Target": "shop_front", "Aliases": ["web", "www"]},
        ])
    );
    // `outside` is declared but used by no service: nothing to check or create.
    assert!(s.external_networks.is_empty());
    let used = STACK.replace("default: {}", "outside: {}");
    let s = convert(&project(&used, "shop"), "shop", &reader).unwrap();
    assert_eq!(s.external_networks, ["shared"]);
    assert!(!s.networks.iter().any(|n| n.name == "shared"));
}

#[test]
fn deploy_section_becomes_mode_resources_policies_and_placement() {
    let s = stack();
    let web = service(&s, "shop_web");
    assert_eq!(web["Mode"], json!({"Replicated": {"Replicas": 3}}));
    let t = &web["TaskTemplate"];
    assert_eq!(
        t["Resources"],
        json!({"Limits": {"NanoCPUs": 500_000_000i64, "MemoryBytes": 268_435_456i64, "Pids": 100},
               "Reservations": {"NanoCPUs": 250_000_000i64, "MemoryBytes": 67_108_864i64}})
    );
    assert_eq!(
        t["RestartPolicy"],
        json!({"Condition": "on-failure", "Delay": 5_000_000_000i64, "MaxAttempts": 3, "Window": 120_000_000_000i64})
    );
    assert_eq!(
        t["Placement"],
        json!({"Constraints": ["node.role==manager"],
               "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
               "MaxReplicas": 2})
    );
    assert_eq!(
        web["UpdateConfig"],
        json!({"Parallelism": 2, "Delay": 10_000_000_000i64, "Order": "start-first", "FailureAction": "rollback"})
    );
    assert_eq!(
        web["RollbackConfig"],
        json!({"Parallelism": 1, "Monitor": 30_000_000_000i64})
    );
    let hc = &t["ContainerSpec"]["Healthcheck"];
    assert_eq!(
        hc["Test"],
        json!(["CMD", "wget", "-q", "http://localhost/"])
    );
    assert_eq!(hc["Interval"], 10_000_000_000i64);
    assert_eq!(hc["StartPeriod"], 60_000_000_000i64);
    assert_eq!(hc["Retries"], 4);
    let api = service(&s, "shop_api");
    assert_eq!(api["Mode"], json!({"Global": {}}));
    assert_eq!(api["EndpointSpec"], json!({"Mode": "dnsrr"}));
    // `restart:` stands in when there is no deploy.restart_policy.
    assert_eq!(
        api["TaskTemplate"]["RestartPolicy"],
        json!({"Condition": "on-failure", "MaxAttempts": 4})
    );
}

#[test]
fn ports_publish_in_ingress_or_host_mode() {
    let s = stack();
    let web = service(&s, "shop_web");
    assert_eq!(
        web["EndpointSpec"],
        json!({"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080},
            {"Protocol": "tcp", "TargetPort": 443, "PublishMode": "host", "PublishedPort": 8443},
        ]})
    );
}

#[test]
fn volumes_secrets_and_configs_are_stack_objects() {
    let s = stack();
    let web = service(&s, "shop_web");
    let cs = &web["TaskTemplate"]["ContainerSpec"];
    let mounts = cs["Mounts"].as_array().unwrap();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Source"], "shop_data");
    assert_eq!(mounts[0]["ReadOnly"], true);
    assert_eq!(
        mounts[0]["VolumeOptions"]["Labels"][NAMESPACE_LABEL],
        "shop"
    );
    assert_eq!(
        mounts[0]["VolumeOptions"]["DriverConfig"],
        json!({"Name": "local", "Options": {"device": "tmpfs", "type": "tmpfs"}})
    );
    assert_eq!(
        mounts[1],
        json!({"Type": "bind", "Target": "/static", "Source": "/srv/static"})
    );
    assert_eq!(
        mounts[2],
        json!({"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1_048_576}})
    );
    assert_eq!(
        cs["Secrets"],
        json!([
            {"File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretName": "shop_token"},
            {"File": {"Name": "tls.pem", "UID": "0", "GID": "0", "Mode": 0o400}, "SecretName": "site_cert"},
        ])
    );
    assert_eq!(cs["Configs"][0]["ConfigName"], "shop_conf");
    assert_eq!(cs["Configs"][0]["File"]["Name"], "/conf");
    let secrets: Vec<&str> = s.secrets.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(secrets, ["shop_token"]);
    assert_eq!(s.secrets[0].spec["Data"], "dG9r");
    assert_eq!(s.secrets[0].spec["Labels"][NAMESPACE_LABEL], "shop");
    assert_eq!(s.external_secrets, ["site_cert"]);
    assert_eq!(s.configs[0].spec["Data"], base64(b"x = 1"));
}

#[test]
fn references_get_the_ids_the_daemon_gave() {
    let s = stack();
    let mut web = service(&s, "shop_web").clone();
    let secrets = BTreeMap::from([
        ("shop_token".to_string(), "id1".to_string()),
        ("site_cert".to_string(), "id2".to_string()),
    ]);
    let configs = BTreeMap::from([("shop_conf".to_string(), "id3".to_string())]);
    resolve_references(&mut web, &secrets, &configs).unwrap();
    let cs = &web["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Secrets"][1]["SecretID"], "id2");
    assert_eq!(cs["Configs"][0]["ConfigID"], "id3");
    let mut again = service(&s, "shop_web").clone();
    let err = resolve_references(&mut again, &BTreeMap::new(), &configs).unwrap_err();
    assert_eq!(err, "shop_token");
}

#[test]
fn what_swarm_cannot_express_is_reported_per_service() {
    let s = stack();
    let web: Vec<&str> = s
        .unsupported
        .iter()
        .filter(|u| u.service == "web")
        .map(|u| u.key.as_str())
        .collect();
    assert_eq!(web, ["build", "depends_on", "container_name"]);
    assert!(!s.unsupported.iter().any(|u| u.service == "api"));
}

#[test]
fn bad_input_is_an_error_naming_service_and_key() {
    let p = project("services:\n  a:\n    build: .\n", "shop");
    let e = convert(&p, "shop", &reader).unwrap_err().to_string();
    assert!(e.contains("service a: image:"), "{e}");
    let p = project(
        "services:\n  a:\n    image: x\n    deploy: {update_config: {delay: soon}}\n",
        "shop",
    );
    let e = convert(&p, "shop", &reader).unwrap_err().to_string();
    assert!(e.contains("service a: deploy.update_config.delay"), "{e}");
    let p = project(
        "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s: {file: ./missing}\n",
        "shop",
    );
    let e = convert(&p, "shop", &reader).unwrap_err().to_string();
    assert!(e.contains("secret s: cannot read"), "{e}");
    let p = project(
        "services:\n  a:\n    image: x\n    deploy: {mode: global, replicas: 2}\n",
        "shop",
    );
    let e = convert(&p, "shop", &reader).unwrap_err().to_string();
    assert!(
        e.contains("service a: deploy.replicas: replicas can only be used"),
        "{e}"
    );
    let e = convert(&p, "Bad Name", &reader).unwrap_err().to_string();
    assert!(e.contains("invalid stack name"), "{e}");
}
