//! The Kubernetes manifests in deploy/k8s: each overlay renders with kustomize (kubectl from
//! PyPI, in a local venv), every object passes `kubernetes-validate --strict` offline against
//! the Kubernetes schemas, the Deployment keeps its hardening (non-root, read-only root
//! filesystem, no privilege escalation, probes on /healthz and /readyz), and the ConfigMap's
//! `varco.toml` passes `varco check-config` (with the Secret files it names generated here).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{binary, scratch};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/k8s-venv.sh"))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "k8s-venv.sh:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command");
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The overlay rendered, and as JSON objects (converted by the venv's PyYAML).
fn render(bin: &Path, overlay: &str, dir: &Path) -> (PathBuf, Vec<serde_json::Value>) {
    let yaml = run(Command::new(bin.join("kubectl"))
        .arg("kustomize")
        .arg(root().join("deploy/k8s/overlays").join(overlay)));
    let file = dir.join(format!("{overlay}.yaml"));
    std::fs::write(&file, &yaml).unwrap();
    let json = run(Command::new(bin.join("python")).args([
        "-c",
        "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        file.to_str().unwrap(),
    ]));
    (file, serde_json::from_str(&json).unwrap())
}

fn openssl(args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl {args:?}");
}

#[test]
fn single_replica_overlay_renders_validates_and_its_config_checks() {
    let bin = venv_bin();
    let dir = scratch("k8s");
    let (file, objects) = render(&bin, "single", &dir);
    run(Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&file));

    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert!(
        !kinds.contains(&"HorizontalPodAutoscaler"),
        "one replica with the in-memory store must not scale"
    );
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let audit = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "audit")
        .unwrap();
    assert_eq!(
        audit["persistentVolumeClaim"]["claimName"], "varco-audit",
        "the audit trail must outlive the pod"
    );
    assert!(kinds.contains(&"PersistentVolumeClaim"));
    let monitor = objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    check_config(&objects, &dir);
}

#[test]
fn multi_replica_overlay_shares_redis_and_postgres_from_secrets_and_its_config_checks() {
    let bin = venv_bin();
    let dir = scratch("k8s-multi");
    let (file, objects) = render(&bin, "multi", &dir);
    run(Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&file));
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} missing"))
    };
    let spec = &find("Deployment")["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert!(
        find("HorizontalPodAutoscaler")["spec"]["minReplicas"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert!(
        find("PodDisruptionBudget")["spec"]["minAvailable"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let pod = &spec["template"]["spec"];
    let secret_of = |volume: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == volume)
            .map(|v| v["secret"]["secretName"].clone())
    };
    assert_eq!(secret_of("redis").unwrap(), "varco-redis");
    assert_eq!(secret_of("audit-db").unwrap(), "varco-audit-db");
    let c = &pod["containers"][0];
    let writer = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "VARCO_AUDIT_WRITER")
        .unwrap();
    assert_eq!(
        writer["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
        "each replica needs its own audit chain"
    );
    let egress = find("NetworkPolicy")["spec"]["egress"].to_string();
    assert!(
        egress.contains("6379") && egress.contains("5432"),
        "{egress}"
    );
    let toml = find("ConfigMap")["data"]["varco.toml"].as_str().unwrap();
    assert!(toml.contains("backend = \"redis\""), "{toml}");
    assert!(
        !toml.contains("redis://") && !toml.contains("password"),
        "no credentials in the ConfigMap"
    );
    check_config(&objects, &dir);
}

/// `varco check-config` on the ConfigMap's `varco.toml`, with the Secret files it names
/// materialized under `dir`.
fn check_config(objects: &[serde_json::Value], dir: &Path) {
    // The ConfigMap's configuration, with the mounted secrets materialized under `dir`.
    let config_map = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let toml = config_map["data"]["varco.toml"].as_str().unwrap();
    let secrets = dir.join("secrets");
    let state = dir.join("state");
    let toml = toml
        .replace(
            "/var/run/secrets/varco/",
            &format!("{}/", secrets.display()),
        )
        .replace("/var/lib/varco-audit", dir.join("audit").to_str().unwrap())
        .replace("/var/lib/varco", state.to_str().unwrap());
    for sub in ["sp", "session", "token", "federation", "redis", "audit-db"] {
        std::fs::create_dir_all(secrets.join(sub)).unwrap();
    }
    let s = |p: &str| secrets.join(p).to_str().unwrap().to_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "2",
        "-subj",
        "/CN=varco-k8s",
        "-keyout",
        &s("sp/tls.key"),
        "-out",
        &s("sp/tls.crt"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "2",
        "-subj",
        "/CN=federation",
        "-keyout",
        &s("federation/key.pem"),
        "-out",
        &s("federation/spid-registry.crt"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &s("token/token.key"),
    ]);
    std::fs::write(secrets.join("session/session.key"), "ab".repeat(32)).unwrap();
    std::fs::write(
        secrets.join("redis/url"),
        "redis://:not-a-password@redis.varco.svc:6379/0\n",
    )
    .unwrap();
    std::fs::write(
        secrets.join("audit-db/url"),
        "host=postgres.varco.svc dbname=varco user=varco password=not-a-password\n",
    )
    .unwrap();
    let config = dir.join("varco.toml");
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(binary("varco"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-config of the ConfigMap:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
