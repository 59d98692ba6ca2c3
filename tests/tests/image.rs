//! The container image, built and run here: scripts/build-image.sh assembles it with buildah
//! (vfs storage, chroot isolation: no daemon, no registry) from the binary `make test` has
//! just built, and this test runs the image as a container would be run: from the image,
//! with the image's own user (never a `--user` given here), the configuration mounted
//! read-only at /etc/varco and the state and audit directories mounted writable. The
//! container must answer `/healthz`, serve the login page, and be running as 65532, both as
//! the process's real and effective uid and as the owner of the audit file it created.
//!
//! Must run as root (buildah's vfs storage and chroot isolation; CI runs as root).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Browser, binary, free_port, scratch, sp_credentials};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
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

/// buildah on the image store the build script uses.
fn buildah(store: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--root")
        .arg(store.join("root"))
        .arg("--runroot")
        .arg(store.join("run"))
        .args(["--storage-driver", "vfs"])
        .env("BUILDAH_ISOLATION", "chroot");
    c
}

/// The pids of `pid`'s descendants, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && !found.contains(&child) {
                found.push(child);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// A readable identity provider metadata file (one IdP, a fresh signing certificate).
fn idp_metadata(dir: &Path) -> String {
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=idp.example",
        ])
        .arg("-keyout")
        .arg(dir.join("idp.key.pem"))
        .arg("-out")
        .arg(dir.join("idp.crt.pem")));
    let cert: String = std::fs::read_to_string(dir.join("idp.crt.pem"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    std::fs::remove_file(dir.join("idp.key.pem")).unwrap();
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://id.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://id.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

#[test]
fn image_builds_and_serves_healthz_and_the_login_page_as_non_root() {
    let dir = scratch("image");
    let store = dir.join("store");
    let image = "localhost/varco:e2e";
    let built = run(Command::new("bash")
        .arg(root().join("scripts/build-image.sh"))
        .arg(binary("varco"))
        .arg(image)
        .env("VARCO_IMAGE_STORE", &store));
    let size: u64 = built
        .lines()
        .last()
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {built:?}"));
    // A scratch image with one stripped binary and glibc: tens of MB, never a distribution.
    assert!(size > 1_000_000 && size < 100_000_000, "image size {size}");
    eprintln!("image {image}: {size} bytes");
    let config = run(buildah(&store).args([
        "inspect",
        "--type",
        "image",
        "--format",
        "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}",
        image,
    ]));
    assert_eq!(
        config.trim(),
        "65532:65532 [/usr/local/bin/varco] [serve --config /etc/varco/varco.toml]"
    );

    // The mounted configuration: readable by anyone (the container's user is not root),
    // state and audit directories writable by 65532 only.
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    sp_credentials(&etc, "varco-image");
    std::fs::write(etc.join("idp.xml"), idp_metadata(&etc)).unwrap();
    let port = free_port();
    std::fs::write(
        etc.join("varco.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n\
             [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
             [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
             url = \"https://www.example.org\"\nipa_code = \"c_h501\"\n\
             email = \"spid@example.org\"\nphone = \"+390600000000\"\n\
             [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
             [state]\ndir = \"/var/lib/varco\"\n[audit]\ndir = \"/var/lib/varco-audit\"\n\
             [[idp]]\nmetadata_file = \"idp.xml\"\n"
        ),
    )
    .unwrap();
    for f in std::fs::read_dir(&etc).unwrap().flatten() {
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (state, audit) = (dir.join("state"), dir.join("audit"));
    for d in [&state, &audit] {
        std::fs::create_dir_all(d).unwrap();
        run(Command::new("chown").arg("65532:65532").arg(d));
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let container = run(buildah(&store).args(["from", "--name", "varco-e2e-image", image]));
    let container = container.trim().to_owned();
    let mount = |host: &Path, at: &str, ro: bool| {
        format!(
            "--volume={}:{at}{}",
            host.display(),
            if ro { ":ro" } else { "" }
        )
    };
    let args = [
        "--root".to_owned(),
        store.join("root").display().to_string(),
        "--runroot".to_owned(),
        store.join("run").display().to_string(),
        "--storage-driver".to_owned(),
        "vfs".to_owned(),
        "run".to_owned(),
        "--isolation".to_owned(),
        "chroot".to_owned(),
        mount(&etc, "/etc/varco", true),
        mount(&state, "/var/lib/varco", false),
        mount(&audit, "/var/lib/varco-audit", false),
        container.clone(),
        "--".to_owned(),
        "/usr/local/bin/varco".to_owned(),
        "serve".to_owned(),
        "--config".to_owned(),
        "/etc/varco/varco.toml".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.join("container.log");
    let mut running = Container(
        Command::new("buildah")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("buildah run"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut b = Browser::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.try_get(&format!("{base}/healthz")).is_none() {
        assert!(Instant::now() < deadline, "no answer:\n{}", logged());
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "exited:\n{}",
            logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let health = b.get(&format!("{base}/healthz"));
    assert_eq!(health.status, 200, "{}", logged());
    let login = b.get(&format!("{base}/login"));
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("<!DOCTYPE html>"), "{}", login.body);
    assert!(
        login.body.contains("href=\"/saml/login?idp="),
        "{}",
        login.body
    );

    // Who runs inside: the varco process under buildah, real and effective uid 65532.
    let varco: Vec<u32> = descendants(running.0.id())
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.ends_with("usr/local/bin/varco"))
        })
        .collect();
    assert_eq!(varco.len(), 1, "{varco:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", varco[0])).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65532"; 4],
        "{uids}"
    );
    let records: Vec<_> = std::fs::read_dir(&audit).unwrap().flatten().collect();
    assert!(!records.is_empty(), "no audit file written");
    for r in records {
        assert_eq!(r.metadata().unwrap().uid(), 65532, "{:?}", r.path());
    }

    // Stopped as an orchestrator stops it: SIGTERM to the process, which drains and exits.
    run(Command::new("kill").arg("-TERM").arg(varco[0].to_string()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running:\n{}", logged());
        std::thread::sleep(Duration::from_millis(50));
    }
    run(buildah(&store).args(["rm", &container]));
    // vfs keeps a full copy of the file system per image and container: leave nothing.
    run(buildah(&store).args(["rmi", image]));
    let _ = std::fs::remove_dir_all(&store);
}

/// `buildah run`, ended with the test: SIGTERM to the container's processes first (SIGKILL
/// to buildah alone could leave them behind, holding the port), then buildah itself.
struct Container(Child);

impl Drop for Container {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            for p in descendants(self.0.id()) {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(p.to_string())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(500));
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
