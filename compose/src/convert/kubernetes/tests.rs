use super::*;

const STACK: &str = r#"
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    depends_on:
      api: {condition: service_healthy}
    labels: {com.example.tier: "front end"}
  api:
    image: example/api:2
    user: "1000:1000"
    expose: ["3000"]
    environment: {DB_HOST: db}
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://localhost:3000/health"]
      interval: 10s
      timeout: 3s
      retries: 5
      start_period: 20s
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "0.5", memory: 256M}
        reservations: {memory: 64M}
    secrets: [db_password]
    networks: [front, back]
  db:
    image: mariadb:10.11
    volumes: ["dbdata:/var/lib/mysql", "./init:/docker-entrypoint-initdb.d"]
    ports: ["3306"]
    networks: [back]
    stop_signal: SIGINT
networks:
  front: {}
  back: {}
volumes:
  dbdata: {}
secrets:
  db_password:
    content: s3cret
"#;

fn project(yaml: &str) -> Project {
    let opts = crate::load::LoadOptions {
        files: vec!["-".into()],
        project_name: Some("shop".into()),
        working_dir: std::env::temp_dir(),
        interpolate: true,
        stdin: Some(yaml.into()),
        ..Default::default()
    };
    crate::load::load(&opts).expect("test file loads").project
}

fn convert_stack(statefulsets: bool) -> Converted {
    let opts = Options {
        statefulsets,
        wait_image: "busybox:1.36".into(),
        ..Default::default()
    };
    convert(&project(STACK), &opts, &|_| Ok(Vec::new())).unwrap()
}

fn find<'a>(c: &'a Converted, kind: &str, name: &str) -> &'a Value {
    c.manifests
        .iter()
        .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn workloads_services_claims_and_secrets() {
    let c = convert_stack(false);
    let api = find(&c, "Deployment", "api");
    assert_eq!(api["spec"]["replicas"], 3);
    let ctr = &api["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(ctr["image"], "example/api:2");
    assert_eq!(ctr["resources"]["limits"]["cpu"], "500m");
    assert_eq!(ctr["resources"]["limits"]["memory"], "268435456");
    assert_eq!(ctr["resources"]["requests"]["memory"], "67108864");
    assert_eq!(ctr["securityContext"]["runAsUser"], 1000);
    let probe = &ctr["readinessProbe"];
    assert_eq!(probe["exec"]["command"][0], "sh");
    assert_eq!(
        (
            probe["periodSeconds"].clone(),
            probe["timeoutSeconds"].clone()
        ),
        (json!(10), json!(3))
    );
    assert_eq!(
        (
            probe["failureThreshold"].clone(),
            probe["initialDelaySeconds"].clone()
        ),
        (json!(5), json!(20))
    );
    assert_eq!(ctr["env"][0], json!({"name": "DB_HOST", "value": "db"}));
    let mount = ctr["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/run/secrets/db_password");
    assert!(mount.is_some(), "{ctr}");
    let secret = find(&c, "Secret", "db-password");
    assert_eq!(secret["data"]["db_password"], "czNjcmV0");

    let web = find(&c, "Service", "web");
    assert_eq!(web["spec"]["type"], "LoadBalancer");
    assert_eq!(web["spec"]["ports"][0]["port"], 8080);
    assert_eq!(web["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(find(&c, "Service", "api")["spec"]["type"], "ClusterIP");
    let init = &find(&c, "Deployment", "web")["spec"]["template"]["spec"]["initContainers"][0];
    assert!(
        init["command"][2]
            .as_str()
            .unwrap()
            .contains("nc -z api 3000"),
        "{init}"
    );
    // Labels with values Kubernetes refuses go to annotations.
    assert_eq!(
        find(&c, "Deployment", "web")["metadata"]["annotations"]["com.example.tier"],
        "front end"
    );
    assert_eq!(
        find(&c, "PersistentVolumeClaim", "dbdata")["spec"]["accessModes"][0],
        "ReadWriteOnce"
    );
}

#[test]
fn what_cannot_be_expressed_is_reported_per_service_and_key() {
    let c = convert_stack(false);
    let keys: Vec<(String, String)> = c
        .unsupported
        .iter()
        .map(|u| (u.service.clone(), u.key.clone()))
        .collect();
    for want in [
        ("db", "stop_signal"),
        ("api", "networks"),
        ("db", "volumes./docker-entrypoint-initdb.d"),
    ] {
        assert!(
            keys.contains(&(want.0.into(), want.1.into())),
            "{want:?} missing from {keys:?}"
        );
    }
}

#[test]
fn statefulsets_when_asked_and_unknown_services_are_errors() {
    let c = convert_stack(true);
    let db = find(&c, "StatefulSet", "db");
    assert_eq!(db["spec"]["serviceName"], "db");
    assert!(
        c.manifests
            .iter()
            .all(|m| !(m["kind"] == "Deployment" && m["metadata"]["name"] == "db"))
    );
    let opts = Options {
        services: vec!["nope".into()],
        ..Default::default()
    };
    assert!(matches!(
        convert(&project(STACK), &opts, &|_| Ok(Vec::new())),
        Err(ConvertError::NoService(_))
    ));
}

#[test]
fn names_and_base64() {
    assert_eq!(k8s_name("My_Service.1"), "my-service-1");
    assert_eq!(base64(b"s3cret"), "czNjcmV0");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b""), "");
}
