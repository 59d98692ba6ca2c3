//! The IdP's signing key and self-signed certificate, kept in the state directory.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use xmldsig::SigningKey;

/// File name of the private key (PKCS#8 PEM) in the state directory.
pub(crate) const KEY_FILE: &str = "idp-key.pem";
/// File name of the certificate (PEM) in the state directory.
pub(crate) const CERT_FILE: &str = "idp-cert.pem";

/// Loads `idp-key.pem` and `idp-cert.pem` from `dir`, or, when neither exists, generates an
/// ECDSA P-256 key and a self-signed certificate there first. Any PKCS#8 key `xmldsig`
/// supports (RSA, P-256, P-384) can be put there by hand instead.
pub(crate) fn load_or_generate(dir: &Path, entity_id: &str) -> Result<SigningKey, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key_path = dir.join(KEY_FILE);
    let cert_path = dir.join(CERT_FILE);
    match (key_path.exists(), cert_path.exists()) {
        (true, true) => {}
        (false, false) => {
            let (key_pem, cert_pem) = generate(entity_id)?;
            write_private(&key_path, key_pem.as_bytes())?;
            fs::write(&cert_path, cert_pem)
                .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
            eprintln!(
                "varco-dev-idp: generated a new P-256 key and certificate in {}",
                dir.display()
            );
        }
        _ => {
            return Err(format!(
                "{} holds only one of {KEY_FILE} and {CERT_FILE}: remove it or add the other",
                dir.display()
            ));
        }
    }
    let key = fs::read(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
    let cert = fs::read(&cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    SigningKey::from_pem(&key, &cert).map_err(|e| format!("{}: {e}", dir.display()))
}

pub(crate) fn generate(entity_id: &str) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("key generation: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("certificate parameters: {e}"))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "IT");
    dn.push(
        rcgen::DnType::OrganizationName,
        "Varco dev IdP - TEST ONLY, NEVER TRUST",
    );
    let cn: String = entity_id.chars().take(64).collect();
    dn.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signed certificate: {e}"))?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// Writes a file readable by its owner only (on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
