//! The Kubernetes manifests in deploy/k8s: `base` and each overlay render with kustomize
//! (kubectl from PyPI, in a local venv), every object passes `kubernetes-validate --strict`
//! offline against the Kubernetes schemas, and, what schema validation cannot see, the
//! references between the objects agree ([`reference_problems`]): every volumeMount has its
//! volume, names are unique, every selector is present and matches the pod labels (Service,
//! ServiceMonitor through the Service, PDB, HPA target, NetworkPolicy), Secrets and
//! ConfigMaps not rendered here are the documented ones the operator creates. The workload
//! keeps its hardening (non-root, read-only root filesystem, no privilege escalation, probes
//! on /healthz and /readyz, a preStop sleep inside the grace period), and the ConfigMap's
//! `varco.toml` passes `varco check-config` (with the Secret files it names generated here).
//!
//! No API server runs here (none is packaged in the registries this project may use), so
//! there is no server-side dry run: docs/OPERATIONS.md, "Kubernetes", says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{binary, scratch};
use serde_json::{Value, json};

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

/// `deploy/k8s/<which>` rendered (`base` or `overlays/NAME`), validated offline against the
/// Kubernetes schemas, and as JSON objects (converted by the venv's PyYAML).
fn render(bin: &Path, which: &str, dir: &Path) -> Vec<Value> {
    let yaml = run(Command::new(bin.join("kubectl"))
        .arg("kustomize")
        .arg(root().join("deploy/k8s").join(which)));
    let file = dir.join(format!("{}.yaml", which.replace('/', "-")));
    std::fs::write(&file, &yaml).unwrap();
    run(Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&file));
    let json = run(Command::new(bin.join("python")).args([
        "-c",
        "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        file.to_str().unwrap(),
    ]));
    serde_json::from_str(&json).unwrap()
}

fn openssl(args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl {args:?}");
}

/// Secrets and ConfigMaps the operator creates before applying (each named in
/// docs/OPERATIONS.md); any other name a pod refers to must be rendered.
const OPERATOR_CREATED: [(&str, &str); 6] = [
    ("Secret", "varco-sp"),
    ("Secret", "varco-session"),
    ("Secret", "varco-token"),
    ("Secret", "varco-redis"),
    ("Secret", "varco-audit-db"),
    ("ConfigMap", "varco-federation"),
];

const WORKLOADS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// `selector` (a label map) selects an object labelled `labels`: non-empty, every pair present.
fn selects(selector: &Value, labels: &Value) -> bool {
    match selector.as_object() {
        Some(s) if !s.is_empty() => s.iter().all(|(k, v)| labels.get(k) == Some(v)),
        _ => false,
    }
}

/// What the API server (or a controller, later) would refuse or silently get wrong in a set
/// of rendered objects, one line per problem; empty when everything agrees.
fn reference_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for o in objects {
        let key = (
            o["kind"].as_str().unwrap_or("").to_owned(),
            o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        );
        if key.1.is_empty() {
            problems.push(format!("a {} without a name", key.0));
        }
        if !seen.insert(key.clone()) {
            problems.push(format!("{} {} rendered twice", key.0, key.1));
        }
    }
    let named = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    };
    let workloads: Vec<&Value> = objects
        .iter()
        .filter(|o| WORKLOADS.contains(&o["kind"].as_str().unwrap_or("")))
        .collect();
    if workloads.is_empty() {
        problems.push("no workload".into());
    }
    let external = |kind: &str, name: &str| OPERATOR_CREATED.contains(&(kind, name));
    for w in &workloads {
        let name = w["metadata"]["name"].as_str().unwrap_or("");
        let labels = &w["spec"]["template"]["metadata"]["labels"];
        if !selects(&w["spec"]["selector"]["matchLabels"], labels) {
            problems.push(format!(
                "{name}: its selector does not match its pod labels"
            ));
        }
        let pod = &w["spec"]["template"]["spec"];
        // Volumes: the pod's own, and for a StatefulSet its claim templates.
        let mut volumes = BTreeMap::new();
        for v in pod["volumes"].as_array().into_iter().flatten() {
            let v_name = v["name"].as_str().unwrap_or("").to_owned();
            if volumes.insert(v_name.clone(), v).is_some() {
                problems.push(format!("{name}: volume {v_name} defined twice"));
            }
            if let Some(cm) = v["configMap"]["name"].as_str() {
                if named("ConfigMap", cm).is_none() && !external("ConfigMap", cm) {
                    problems.push(format!("{name}: volume {v_name} names ConfigMap {cm}, which is neither rendered nor operator-created"));
                }
            }
            if let Some(s) = v["secret"]["secretName"].as_str() {
                if named("Secret", s).is_none() && !external("Secret", s) {
                    problems.push(format!("{name}: volume {v_name} names Secret {s}, which is neither rendered nor operator-created"));
                }
            }
            if let Some(c) = v["persistentVolumeClaim"]["claimName"].as_str() {
                if named("PersistentVolumeClaim", c).is_none() {
                    problems.push(format!(
                        "{name}: volume {v_name} names claim {c}, which is not rendered"
                    ));
                }
            }
        }
        for t in w["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let t_name = t["metadata"]["name"].as_str().unwrap_or("").to_owned();
            if volumes.insert(t_name.clone(), t).is_some() {
                problems.push(format!(
                    "{name}: volume {t_name} defined twice (pod volume and claim template)"
                ));
            }
        }
        let mut used = BTreeSet::new();
        for c in pod["containers"].as_array().into_iter().flatten() {
            let mut paths = BTreeSet::new();
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let m_name = m["name"].as_str().unwrap_or("");
                let path = m["mountPath"].as_str().unwrap_or("");
                if !volumes.contains_key(m_name) {
                    problems.push(format!(
                        "{name}: mount {path} uses volume {m_name}, which is not defined"
                    ));
                }
                if !paths.insert(path) {
                    problems.push(format!("{name}: two mounts at {path}"));
                }
                used.insert(m_name.to_owned());
            }
        }
        for v in volumes.keys() {
            if !used.contains(v) {
                problems.push(format!("{name}: volume {v} is mounted nowhere"));
            }
        }
        if let Some(svc) = w["spec"]["serviceName"].as_str() {
            if named("Service", svc).is_none() {
                problems.push(format!("{name}: serviceName {svc} is not rendered"));
            }
        }
        for t in pod["topologySpreadConstraints"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if !selects(&t["labelSelector"]["matchLabels"], labels) {
                problems.push(format!(
                    "{name}: a topology spread constraint selects other pods"
                ));
            }
        }
    }
    // The pod labels of any workload (there is one here).
    let selects_a_pod = |sel: &Value| {
        workloads
            .iter()
            .any(|w| selects(sel, &w["spec"]["template"]["metadata"]["labels"]))
    };
    let ports_of = |svc: &Value| -> Vec<String> {
        svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    for o in objects {
        let name = o["metadata"]["name"].as_str().unwrap_or("");
        match o["kind"].as_str().unwrap_or("") {
            "Service" => {
                if !selects_a_pod(&o["spec"]["selector"]) {
                    problems.push(format!("Service {name}: its selector matches no pod"));
                }
                for p in o["spec"]["ports"].as_array().into_iter().flatten() {
                    if let Some(target) = p["targetPort"].as_str() {
                        let declared = workloads.iter().any(|w| {
                            w["spec"]["template"]["spec"]["containers"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                                .any(|cp| cp["name"] == target)
                        });
                        if !declared {
                            problems.push(format!(
                                "Service {name}: targetPort {target} is no container port"
                            ));
                        }
                    }
                }
            }
            "PodDisruptionBudget" if !selects_a_pod(&o["spec"]["selector"]["matchLabels"]) => {
                problems.push(format!(
                    "PodDisruptionBudget {name}: its selector matches no pod"
                ));
            }
            "NetworkPolicy" if !selects_a_pod(&o["spec"]["podSelector"]["matchLabels"]) => {
                problems.push(format!(
                    "NetworkPolicy {name}: its podSelector does not select Varco's pods \
                     (an empty one selects every pod of the namespace)"
                ));
            }
            "ServiceMonitor" => {
                // It selects Services by their labels; the endpoints name a Service port.
                let services: Vec<&Value> = objects
                    .iter()
                    .filter(|s| {
                        s["kind"] == "Service"
                            && selects(
                                &o["spec"]["selector"]["matchLabels"],
                                &s["metadata"]["labels"],
                            )
                    })
                    .collect();
                if services.is_empty() {
                    problems.push(format!(
                        "ServiceMonitor {name}: its selector matches no Service"
                    ));
                }
                for e in o["spec"]["endpoints"].as_array().into_iter().flatten() {
                    let port = e["port"].as_str().unwrap_or("");
                    if !services
                        .iter()
                        .any(|s| ports_of(s).iter().any(|p| p == port))
                    {
                        problems.push(format!(
                            "ServiceMonitor {name}: endpoint port {port} is no port of its Services"
                        ));
                    }
                }
            }
            "HorizontalPodAutoscaler" => {
                let t = &o["spec"]["scaleTargetRef"];
                let target = named(
                    t["kind"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or(""),
                );
                if target.is_none() {
                    problems.push(format!(
                        "HorizontalPodAutoscaler {name}: its target {} {} is not rendered",
                        t["kind"], t["name"]
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} missing"))
}

fn kinds(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect()
}

fn claim_templates(sts: &Value) -> Vec<&str> {
    sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["metadata"]["name"].as_str().unwrap())
        .collect()
}

/// The hardening and the rollout/reload shape every rendering keeps.
fn check_workload(objects: &[Value]) {
    let problems = reference_problems(objects);
    assert!(problems.is_empty(), "{problems:#?}");
    let sts = find(objects, "StatefulSet");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The preStop sleep and Varco's own drain (server.shutdown_grace_seconds, default 20)
    // both fit in the grace period, or SIGKILL cuts the ACS POSTs in flight.
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(sleep >= 5, "endpoints need a few seconds to drop the pod");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > sleep + 20,
        "grace {grace} <= preStop {sleep} + drain 20"
    );
    // The configuration: a ConfigMap with a stable name, mounted as a directory (never
    // subPath, which the kubelet never updates), so an edit reaches the file poll.
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/varco")
        .unwrap();
    assert!(mount.get("subPath").is_none(), "{mount}");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "varco-config");
    assert!(
        objects
            .iter()
            .any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "varco-config"),
        "the ConfigMap's name must not carry a content hash"
    );
    // The last-known-good metadata lives on a claim, which survives the pod.
    assert!(claim_templates(sts).contains(&"state"), "{sts}");
    let monitor = find(objects, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // Scraped on the management port, which no Ingress routes to.
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
}

/// One replica, never two at once, the audit trail and the metadata on claims, no HPA.
fn check_one_replica(objects: &[Value]) {
    check_workload(objects);
    assert!(
        !kinds(objects).contains(&"HorizontalPodAutoscaler"),
        "one replica with the in-memory store must not scale"
    );
    let sts = find(objects, "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert!(
        claim_templates(sts).contains(&"audit"),
        "the audit trail must outlive the pod"
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Retain"
    );
    let pdb = find(objects, "PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["maxUnavailable"], 1,
        "with one replica, minAvailable 1 would block every node drain"
    );
    let toml = find(objects, "ConfigMap")["data"]["varco.toml"]
        .as_str()
        .unwrap();
    assert!(!toml.contains("backend = \"redis\""));
}

#[test]
fn base_alone_is_one_replica_with_durable_state_and_its_config_checks() {
    let bin = venv_bin();
    let dir = scratch("k8s-base");
    let objects = render(&bin, "base", &dir);
    check_one_replica(&objects);
    check_config(&objects, &dir);
}

#[test]
fn single_replica_overlay_renders_validates_and_its_config_checks() {
    let bin = venv_bin();
    let dir = scratch("k8s");
    let objects = render(&bin, "overlays/single", &dir);
    check_one_replica(&objects);
    check_config(&objects, &dir);
}

#[test]
fn multi_replica_overlay_shares_redis_and_postgres_from_secrets_and_its_config_checks() {
    let bin = venv_bin();
    let dir = scratch("k8s-multi");
    let objects = render(&bin, "overlays/multi", &dir);
    check_workload(&objects);
    let sts = find(&objects, "StatefulSet");
    let spec = &sts["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    let hpa = find(&objects, "HorizontalPodAutoscaler");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "StatefulSet");
    assert_eq!(
        claim_templates(sts),
        ["state"],
        "the audit trail is in PostgreSQL"
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
    let egress = find(&objects, "NetworkPolicy")["spec"]["egress"].to_string();
    assert!(
        egress.contains("6379") && egress.contains("5432"),
        "{egress}"
    );
    let toml = find(&objects, "ConfigMap")["data"]["varco.toml"]
        .as_str()
        .unwrap();
    assert!(toml.contains("backend = \"redis\""), "{toml}");
    assert!(
        !toml.contains("redis://") && !toml.contains("password"),
        "no credentials in the ConfigMap"
    );
    check_config(&objects, &dir);
}

/// The reference check itself fails on each mistake it is there for, starting from the
/// base as rendered: the overlay bug of issue 19 (a patch that replaced the wrong volume,
/// leaving one defined twice and a mount without its volume), selectors missing or wrong,
/// an HPA aimed at a workload that is not there, a Secret nobody creates, an object twice.
#[test]
fn reference_check_finds_each_broken_reference() {
    let bin = venv_bin();
    let dir = scratch("k8s-broken");
    let good = render(&bin, "base", &dir);
    assert!(reference_problems(&good).is_empty());
    let idx =
        |objects: &[Value], kind: &str| objects.iter().position(|o| o["kind"] == kind).unwrap();
    type Breaker = fn(&mut Vec<Value>, usize);
    let cases: [(&str, &str, Breaker); 9] = [
        ("StatefulSet", "volume audit defined twice", |o, i| {
            let vols = o[i]["spec"]["template"]["spec"]["volumes"]
                .as_array_mut()
                .unwrap();
            vols.push(json!({"name": "audit", "emptyDir": {}}));
        }),
        (
            "StatefulSet",
            "uses volume state, which is not defined",
            |o, i| {
                o[i]["spec"]["volumeClaimTemplates"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|t| t["metadata"]["name"] != "state");
            },
        ),
        (
            "PodDisruptionBudget",
            "PodDisruptionBudget varco: its selector matches no pod",
            |o, i| {
                o[i]["spec"].as_object_mut().unwrap().remove("selector");
            },
        ),
        (
            "ServiceMonitor",
            "ServiceMonitor varco: its selector matches no Service",
            |o, i| {
                o[i]["spec"].as_object_mut().unwrap().remove("selector");
            },
        ),
        (
            "NetworkPolicy",
            "NetworkPolicy varco: its podSelector",
            |o, i| {
                o[i]["spec"]["podSelector"] = json!({});
            },
        ),
        (
            "Service",
            "Service varco: its selector matches no pod",
            |o, i| {
                o[i]["spec"]["selector"]["app.kubernetes.io/component"] = json!("other");
            },
        ),
        (
            "Service",
            "HorizontalPodAutoscaler varco: its target",
            |o, _| {
                o.push(
                    json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "varco"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "varco"}}}),
                );
            },
        ),
        (
            "StatefulSet",
            "names Secret varco-tokens, which is neither rendered nor operator-created",
            |o, i| {
                for v in o[i]["spec"]["template"]["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                {
                    if v["name"] == "token-key" {
                        v["secret"]["secretName"] = json!("varco-tokens");
                    }
                }
            },
        ),
        ("Service", "Service varco rendered twice", |o, i| {
            let copy = o[i].clone();
            o.push(copy);
        }),
    ];
    for (kind, expected, breaker) in cases {
        let mut objects = good.clone();
        let i = idx(&objects, kind);
        breaker(&mut objects, i);
        let problems = reference_problems(&objects);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected {expected:?} in {problems:#?}"
        );
    }
}

/// Every Secret and ConfigMap the operator must create is named in the operations guide.
#[test]
fn operator_created_objects_are_documented() {
    let ops = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).unwrap();
    for (kind, name) in OPERATOR_CREATED {
        assert!(
            ops.contains(&format!("`{name}`")),
            "{kind} {name} is not in docs/OPERATIONS.md"
        );
    }
}

/// `varco check-config` on the ConfigMap's `varco.toml`, with the Secret files it names
/// materialized under `dir`.
fn check_config(objects: &[Value], dir: &Path) {
    // The ConfigMap's configuration, with the mounted secrets materialized under `dir`.
    let config_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "varco-config")
        .unwrap();
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
