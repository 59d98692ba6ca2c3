//! `varco keys generate`: the four secrets a deployment needs, written once into a directory.
//!
//! - `sp.key.pem` / `sp.crt.pem`: an RSA key (PKCS#8, what `sp.key_file` reads) and a
//!   self-signed certificate in the profile AgID fixes for SPID service providers (Avviso SPID
//!   n. 29 v3), which CIE accepts as well: subject with commonName, organizationName,
//!   organizationIdentifier (`PA:IT-<IPA code>` for public SPs, `VATIT-<VAT>` or
//!   `CF:IT-<fiscal code>` for private ones), uri (the entityID), countryName IT and
//!   localityName; keyUsage critical with digitalSignature and nonRepudiation only;
//!   basicConstraints CA:FALSE, not critical; certificatePolicies agIDcert (1.3.76.16.6) and
//!   the SP policy of the sector (1.3.76.16.4.2.1 public, 1.3.76.16.4.3.1 private), each with
//!   its user notice. `spid-compliant-certificates` (what spid-sp-test `--extra` runs) accepts
//!   it, and the e2e test holds it to that.
//! - `session.key`: 32 random bytes in hex (`session.key_file`).
//! - `token.key`: a P-256 PKCS#8 key (`[[token.key]] file`).
//!
//! ring cannot generate RSA keys, so the `rsa` crate makes the key pair and nothing else: the
//! certificate is signed by ring through rcgen, and Varco never uses `rsa` for a private-key
//! operation at run time.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::leaf::output::EX_USAGE;

/// The flags of `varco keys generate`.
#[derive(Args)]
pub(super) struct GenerateArgs {
    /// Directory to write the files into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// The SP entityID, written in the subject's uri attribute (by default Varco's is
    /// <public_base_url>/saml/metadata).
    #[arg(long, value_name = "URL")]
    entity_id: String,
    /// organizationName, as in the SP metadata.
    #[arg(long, value_name = "NAME")]
    org_name: String,
    /// organizationIdentifier: PA:IT-<IPA code> (public) or VATIT-<11 digits> /
    /// CF:IT-<16 characters> (private).
    #[arg(long, value_name = "ID")]
    org_id: String,
    /// localityName, e.g. Roma.
    #[arg(long, value_name = "NAME")]
    locality: String,
    /// commonName (default: the organization name).
    #[arg(long, value_name = "NAME")]
    common_name: Option<String>,
    /// The SPID sector, which selects the SP certificate policy.
    #[arg(long, value_enum, default_value_t = Sector::Public)]
    sector: Sector,
    /// Validity in days (1-3650). A new certificate means new metadata for every federation.
    #[arg(long, value_name = "N", default_value_t = 730, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// RSA modulus size.
    #[arg(long, value_name = "BITS", default_value_t = 3072, value_parser = bits)]
    rsa_bits: usize,
}

fn bits(s: &str) -> Result<usize, String> {
    match s {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        _ => Err("expected 2048, 3072 or 4096 (SPID accepts these three)".into()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sector {
    Public,
    Private,
}

const FILES: [&str; 4] = ["sp.key.pem", "sp.crt.pem", "session.key", "token.key"];

/// Runs `varco keys generate`.
pub(super) fn generate(args: &GenerateArgs) -> ExitCode {
    if let Err(e) = check(args) {
        eprintln!("varco keys generate: {e}");
        return ExitCode::from(EX_USAGE);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("varco keys generate: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    // Nothing is written if any file is there already: a key is never replaced by accident.
    let taken: Vec<_> = FILES
        .iter()
        .map(|f| args.out.join(f))
        .filter(|p| p.exists())
        .collect();
    if !taken.is_empty() {
        for p in &taken {
            eprintln!(
                "varco keys generate: {} exists; not overwritten",
                p.display()
            );
        }
        return ExitCode::from(EX_USAGE);
    }
    let files = match make(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("varco keys generate: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, bytes, private) in files {
        if let Err(e) = write_new(&args.out.join(name), bytes.as_bytes(), private) {
            eprintln!("varco keys generate: {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    crate::leaf::output::line(format_args!(
        "wrote {} (sp.key.pem, sp.crt.pem: RSA-{}, {} days; session.key; token.key: P-256)",
        args.out.display(),
        args.rsa_bits,
        args.days
    ));
    ExitCode::SUCCESS
}

/// The subject values SPID constrains, checked before any key is made.
fn check(args: &GenerateArgs) -> Result<(), String> {
    let id = args.org_id.as_str();
    let ok = match args.sector {
        Sector::Public => id
            .strip_prefix("PA:IT-")
            .is_some_and(|c| (1..=16).contains(&c.len()) && !c.contains(char::is_whitespace)),
        Sector::Private => {
            id.strip_prefix("VATIT-")
                .is_some_and(|v| v.len() == 11 && v.bytes().all(|b| b.is_ascii_digit()))
                || id
                    .strip_prefix("CF:IT-")
                    .is_some_and(|c| c.len() == 16 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        }
    };
    if !ok {
        return Err(match args.sector {
            Sector::Public => format!("--org-id {id:?}: a public SP uses PA:IT-<IPA code>"),
            Sector::Private => format!(
                "--org-id {id:?}: a private SP uses VATIT-<11 digits> or CF:IT-<fiscal code>"
            ),
        });
    }
    if !(args.entity_id.starts_with("https://") || args.entity_id.starts_with("http://")) {
        return Err("--entity-id must be the SP entityID, an http(s) URL".into());
    }
    for (flag, value) in [
        ("--org-name", &args.org_name),
        ("--locality", &args.locality),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{flag} must not be empty"));
        }
    }
    Ok(())
}

/// The four files' contents: (name, text, private).
fn make(args: &GenerateArgs) -> Result<Vec<(&'static str, String, bool)>, String> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, args.rsa_bits)
        .map_err(|e| format!("RSA key generation: {e}"))?;
    let key_pem = rsa_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("RSA key encoding: {e}"))?;
    let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("RSA key: {e}"))?;
    let cert = certificate(args, &key)?;

    let token = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("token key: {e}"))?;

    let mut session = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut session)
        .map_err(|_| "no randomness for the session key".to_owned())?;
    let session_hex: String = session.iter().map(|b| format!("{b:02x}")).collect();

    Ok(vec![
        ("sp.key.pem", key_pem.to_string(), true),
        ("sp.crt.pem", cert, false),
        ("session.key", session_hex + "\n", true),
        ("token.key", token.serialize_pem(), true),
    ])
}

fn certificate(args: &GenerateArgs, key: &rcgen::KeyPair) -> Result<String, String> {
    use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa};
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        args.common_name.as_deref().unwrap_or(&args.org_name),
    );
    dn.push(DnType::OrganizationName, args.org_name.as_str());
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 97]),
        args.org_id.as_str(),
    );
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 83]),
        args.entity_id.as_str(),
    );
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::LocalityName, args.locality.as_str());
    params.distinguished_name = dn;
    let now = crate::leaf::clock::unix(crate::leaf::clock::system());
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(now);
    params.not_after = params.not_before + Duration::from_secs(u64::from(args.days) * 86_400);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::ContentCommitment,
    ];
    // rcgen marks CA:FALSE critical; the AgID profile wants it present and not critical, so it
    // is written here: an empty SEQUENCE (cA defaults to FALSE).
    params.is_ca = IsCa::NoCa;
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[2, 5, 29, 19],
            vec![0x30, 0x00],
        ));
    let sp_policy: &[u64] = match args.sector {
        Sector::Public => &[1, 3, 76, 16, 4, 2, 1],
        Sector::Private => &[1, 3, 76, 16, 4, 3, 1],
    };
    let sp_notice = match args.sector {
        Sector::Public => "cert_SP_Pub",
        Sector::Private => "cert_SP_Priv",
    };
    let policies = der(
        0x30,
        &[
            policy(&[1, 3, 76, 16, 6], "agIDcert"),
            policy(sp_policy, sp_notice),
        ]
        .concat(),
    );
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(&[2, 5, 29, 32], policies));
    let cert = params
        .self_signed(key)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok(cert.pem())
}

/// One PolicyInformation with a user notice carrying `text` (RFC 5280 4.2.1.4).
fn policy(id: &[u64], text: &str) -> Vec<u8> {
    const ID_QT_UNOTICE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 2, 2];
    let notice = der(0x30, &der(0x0c, text.as_bytes()));
    let qualifier = der(0x30, &[oid(ID_QT_UNOTICE), notice].concat());
    der(0x30, &[oid(id), der(0x30, &qualifier)].concat())
}

/// A DER TLV (definite length, short or long form).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER OBJECT IDENTIFIER (at least two arcs, the first 0-2).
fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let (first, second) = (
        arcs.first().copied().unwrap_or(0),
        arcs.get(1).copied().unwrap_or(0),
    );
    let mut push = |mut v: u64| {
        let mut chunk = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    };
    push(first * 40 + second);
    for arc in arcs.iter().skip(2) {
        push(*arc);
    }
    der(0x06, &body)
}

/// Creates `path` (never replacing a file), mode 0600 for secrets.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_of_known_oids() {
        // id-qt-unotice and agIDcert, as openssl asn1parse prints them.
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 2, 2]),
            [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x02]
        );
        assert_eq!(
            oid(&[1, 3, 76, 16, 6]),
            [0x06, 0x04, 0x2b, 0x4c, 0x10, 0x06]
        );
        assert_eq!(der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    }
}
