//! `rcompose convert --to kubernetes` (issue 18): a multi-service stack with a healthcheck, a
//! named volume, a secret, resources and two networks becomes manifests that pass
//! `kubernetes-validate --strict` (PyPI; `.ci/run` installs it, the test says so and skips
//! the schema check where it is missing), and what Kubernetes cannot express is reported.

mod common;

use std::process::Command;

const STACK: &str = r#"
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    depends_on:
      api: {condition: service_healthy}
    networks: [front]
  api:
    image: example/api:2
    expose: ["3000"]
    user: "1000"
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://localhost:3000/health || exit 1"]
      interval: 10s
      timeout: 2s
      retries: 3
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.25", memory: 128M}
    secrets: [db_password]
    environment: {DB_HOST: db}
    networks: [front, back]
  db:
    image: mariadb:10.11
    volumes: ["dbdata:/var/lib/mysql"]
    expose: ["3306"]
    networks: [back]
    ulimits: {nofile: 65536}
networks: {front: {}, back: {}}
volumes: {dbdata: {}}
secrets:
  db_password: {file: ./db_password.txt}
"#;

#[test]
fn a_stack_becomes_valid_kubernetes_manifests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), STACK).unwrap();
    std::fs::write(dir.path().join("db_password.txt"), "hunter2\n").unwrap();
    let out = dir.path().join("k8s");
    let o = Command::new(common::bin())
        .current_dir(dir.path())
        .args(["convert", "--to", "kubernetes", "--statefulsets", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = common::stderr(&o);
    assert!(o.status.success(), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "api-deployment.yaml",
            "api-service.yaml",
            "db-password-secret.yaml",
            "db-service.yaml",
            "db-statefulset.yaml",
            "dbdata-persistentvolumeclaim.yaml",
            "web-deployment.yaml",
            "web-service.yaml",
        ]
    );
    assert!(
        stderr.contains("warning: service \"db\": ulimits:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("networks: every pod shares the cluster network"),
        "{stderr}"
    );

    // The same on standard output, as one stream.
    let o = Command::new(common::bin())
        .current_dir(dir.path())
        .args(["convert", "api"])
        .output()
        .unwrap();
    let stream = common::stdout(&o);
    assert!(
        stream.contains("kind: Deployment") && stream.contains("readinessProbe"),
        "{stream}"
    );
    assert!(
        !stream.contains("name: web"),
        "only the service asked for: {stream}"
    );

    let validate = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files.iter().map(|f| out.join(f)))
        .output();
    match validate {
        Err(e) => eprintln!(
            "skipped the schema check: kubernetes-validate is not installed ({e}); pip install kubernetes-validate"
        ),
        Ok(v) => assert!(
            v.status.success(),
            "kubernetes-validate --strict: {}{}",
            common::stdout(&v),
            common::stderr(&v)
        ),
    }
}
