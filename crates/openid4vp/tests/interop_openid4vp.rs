//! The verifier core against an independent wallet (`tests/py/wallet_vp.py`: jwcrypto,
//! cryptography and the OpenWallet Foundation `sd-jwt`, in `scripts/wallet-venv.sh`): our
//! request objects are checked and answered by it, and its encrypted answers are opened
//! and verified here down to the PID. One request per scenario (each key is one-use).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jose::{Enc, Jwks, Signer};
use openid4vp::{
    ClientId, CredentialQuery, Format, Pending, ResponseLimits, Verifier, authorization_url,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sdjwt::{Expect, IssuerKey, Limits, Pid, Presentation};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const RESPONSE_URI: &str = "https://varco.example.it/wallet/response";

fn wallet(input: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/wallet_vp.py");
    let input = serde_json::to_vec(input).unwrap();
    serde_json::from_slice(&testkit::python::run("wallet", &script, &[], Some(&input))).unwrap()
}

fn es256(pkcs8: Option<&[u8]>) -> Signer {
    let rng = SystemRandom::new();
    let generated;
    let der = match pkcs8 {
        Some(d) => d,
        None => {
            generated =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            generated.as_ref()
        }
    };
    Signer::es256_from_pkcs8(der, Some("rp-sig-1"), &rng).unwrap()
}

fn federation_verifier() -> (Verifier, Value) {
    let signer = es256(None);
    let jwk = signer.jwk().to_value();
    let client = ClientId::Federation {
        entity_id: "https://varco.example.it".into(),
    };
    let v = Verifier::new(
        client,
        signer,
        RESPONSE_URI,
        300,
        vec![Enc::A128Gcm, Enc::A256Gcm],
    )
    .unwrap();
    (v, jwk)
}

fn x509_verifier() -> Verifier {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["varco.example.it".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let signer = es256(Some(&key.serialize_der()));
    let client = ClientId::X509Hash {
        chain: vec![cert.der().to_vec()],
    };
    Verifier::new(client, signer, RESPONSE_URI, 300, vec![Enc::A256Gcm]).unwrap()
}

fn pid_query() -> CredentialQuery {
    CredentialQuery {
        id: "pid".into(),
        format: Format::SdJwt {
            vct_values: vec!["urn:eudi:pid:it:1".into()],
        },
        claims: ["given_name", "family_name", "birth_date", "tax_id_code"]
            .iter()
            .map(|c| vec![(*c).to_owned()])
            .collect(),
    }
}

/// What the broker will do with a POSTed response: open it with the pending request,
/// then verify every presentation with the issuer's keys, the request's nonce and our
/// client_id; the PID, or the refusal code.
fn login(pending: Pending, response: &str, now: u64, issuer: &Jwks) -> Result<Pid, String> {
    let opened = pending
        .open(response, now, &ResponseLimits::default())
        .map_err(|e| e.code().to_owned())?;
    assert_eq!(opened.response_uri, RESPONSE_URI);
    assert_eq!(opened.jwk_thumbprint.len(), 32);
    let pres = &opened.vp_token["pid"][0];
    let expect = Expect {
        now,
        aud: &opened.client_id,
        nonce: &opened.nonce,
        vct: &["urn:eudi:pid:it:1"],
        iss: Some("https://pid.example.it"),
        skew: 60,
        kb_max_age: 300,
        require_status: true,
    };
    let verified = Presentation::parse(pres, &Limits::default())
        .and_then(|p| p.verify(IssuerKey::Set(issuer), &expect))
        .map_err(|e| e.code().to_owned())?;
    Pid::from_claims(&verified.claims).map_err(|e| e.code().to_owned())
}

const SCENARIOS: [(&str, &str); 12] = [
    ("ok", "ok"),
    ("other_state", "openid4vp.state"),
    ("encrypted_to_another_key", "jose.jwe_decrypt"),
    ("unrequested_credential", "openid4vp.unrequested_credential"),
    ("missing_credential", "openid4vp.missing_credential"),
    ("two_presentations", "openid4vp.response"),
    ("wallet_error", "openid4vp.wallet_error"),
    ("kb_wrong_nonce", "sdjwt.nonce"),
    ("kb_wrong_aud", "sdjwt.audience"),
    ("unencrypted", "jose.jwe"),
    ("response_for_another_request", "jose.jwe_kid"),
    ("expired", "openid4vp.expired"),
];

#[test]
fn independent_wallet_answers_our_requests_and_every_attack_is_refused() {
    let (verifier, jwk) = federation_verifier();
    let rng = SystemRandom::new();
    let mut pendings = Vec::new();
    let mut requests = Vec::new();
    for (name, _) in SCENARIOS {
        let (jar, pending) = verifier.request(&[pid_query()], NOW, &rng).unwrap();
        requests.push(json!({"name": name, "jar": jar}));
        pendings.push(pending);
    }
    let out = wallet(&json!({"now": NOW, "verifier_jwk": jwk, "requests": requests}));
    let issuer = Jwks::from_value(&out["issuer_jwks"]).unwrap();
    let responses = out["responses"].as_array().unwrap();
    let mut wrong = Vec::new();
    let mut pendings: Vec<Option<Pending>> = pendings.into_iter().map(Some).collect();
    for (i, (name, want)) in SCENARIOS.iter().enumerate() {
        let r = responses[i]["response"].as_str().unwrap();
        assert_eq!(
            responses[i]["client_id"],
            "openid_federation:https://varco.example.it"
        );
        // The answer to another browser's request: the "ok" response (request 0) posted
        // against this pending request.
        let (resp, now) = match *name {
            "response_for_another_request" => {
                (responses[0]["response"].as_str().unwrap().to_owned(), NOW)
            }
            "expired" => (r.to_owned(), NOW + 301),
            _ => (r.to_owned(), NOW),
        };
        let pending = if *name == "ok" {
            pendings[0].take().unwrap()
        } else {
            pendings[i].take().unwrap()
        };
        let got = match login(pending, &resp, now, &issuer) {
            Ok(pid) => {
                assert_eq!(pid.family_name, "Rossi");
                assert_eq!(pid.tax_id_code.as_deref(), Some("TINIT-RSSMRA80A10H501U"));
                // Data minimisation: birth_place was issued but not asked for.
                assert_eq!(pid.birth_place, None);
                "ok".to_owned()
            }
            Err(code) => code,
        };
        if got != *want {
            wrong.push(format!("{name}: got {got}, expected {want}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn x509_hash_request_verified_by_the_wallet_from_its_certificate() {
    let verifier = x509_verifier();
    assert!(verifier.client_id().starts_with("x509_hash:"));
    let rng = SystemRandom::new();
    let (jar, pending) = verifier.request(&[pid_query()], NOW, &rng).unwrap();
    // The wallet ignores verifier_jwk for x509_hash and uses the x5c leaf.
    let out = wallet(
        &json!({"now": NOW, "verifier_jwk": {"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        "requests": [{"name": "ok_x509", "jar": jar}]}),
    );
    let issuer = Jwks::from_value(&out["issuer_jwks"]).unwrap();
    let resp = out["responses"][0]["response"].as_str().unwrap();
    let pid = login(pending, resp, NOW, &issuer).unwrap();
    assert_eq!(pid.given_name, "Mario");
}

#[test]
fn request_object_shape() {
    let (verifier, _) = federation_verifier();
    let rng = SystemRandom::new();
    let (jar, pending) = verifier.request(&[pid_query()], NOW, &rng).unwrap();
    let jws = jose::Jws::decode(
        &jar,
        jose::Typ::Exactly("oauth-authz-req+jwt"),
        &jose::Limits::default(),
    )
    .unwrap();
    let c = jws.claims_unverified();
    assert_eq!(c["response_mode"], "direct_post.jwt");
    assert_eq!(c["response_type"], "vp_token");
    assert_eq!(c["client_id"], "openid_federation:https://varco.example.it");
    assert_eq!(c["iss"], "https://varco.example.it");
    assert_eq!(c["state"], pending.state());
    assert_eq!(c["nonce"], pending.nonce());
    assert_eq!(c["exp"], NOW + 300);
    assert_eq!(pending.expires_at(), NOW + 300);
    assert_eq!(
        c["dcql_query"]["credentials"][0]["claims"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let enc = &c["client_metadata"]["jwks"]["keys"][0];
    assert_eq!(enc["use"], "enc");
    assert!(enc.get("d").is_none());
    // Two requests never share a nonce, a state or a key.
    let (jar2, p2) = verifier.request(&[pid_query()], NOW, &rng).unwrap();
    assert_ne!(p2.state(), pending.state());
    assert_ne!(p2.nonce(), pending.nonce());
    let c2 = jose::Jws::decode(
        &jar2,
        jose::Typ::Exactly("oauth-authz-req+jwt"),
        &jose::Limits::default(),
    )
    .unwrap();
    assert_ne!(
        c2.claims_unverified()["client_metadata"]["jwks"],
        c["client_metadata"]["jwks"]
    );
    let url = authorization_url(
        "openid4vp://",
        verifier.client_id(),
        "https://varco.example.it/wallet/request/abc",
    );
    assert_eq!(
        url,
        "openid4vp://?client_id=openid_federation%3Ahttps%3A%2F%2Fvarco.example.it&request_uri=https%3A%2F%2Fvarco.example.it%2Fwallet%2Frequest%2Fabc&request_uri_method=get"
    );
}

#[test]
fn configuration_refused_when_unusable() {
    let code = |client: ClientId, uri: &str, ttl: u64, encs: Vec<Enc>| {
        Verifier::new(client, es256(None), uri, ttl, encs)
            .unwrap_err()
            .code()
    };
    let fed = || ClientId::Federation {
        entity_id: "https://varco.example.it".into(),
    };
    let all = || vec![Enc::A128Gcm];
    for (c, uri, ttl, encs) in [
        (
            ClientId::Federation {
                entity_id: "http://varco.example.it".into(),
            },
            RESPONSE_URI,
            300,
            all(),
        ),
        (
            ClientId::X509Hash { chain: vec![] },
            RESPONSE_URI,
            300,
            all(),
        ),
        (fed(), "http://varco.example.it/r", 300, all()),
        (fed(), RESPONSE_URI, 0, all()),
        (fed(), RESPONSE_URI, 7200, all()),
        (fed(), RESPONSE_URI, 300, vec![]),
    ] {
        assert_eq!(code(c, uri, ttl, encs), "openid4vp.config");
    }
    let (v, _) = federation_verifier();
    let rng = SystemRandom::new();
    let mut bad = pid_query();
    bad.id = "pid id".into();
    assert_eq!(
        v.request(&[bad], NOW, &rng).unwrap_err().code(),
        "openid4vp.config"
    );
    assert_eq!(
        v.request(&[pid_query(), pid_query()], NOW, &rng)
            .unwrap_err()
            .code(),
        "openid4vp.config"
    );
    assert_eq!(
        v.request(&[], NOW, &rng).unwrap_err().code(),
        "openid4vp.config"
    );
}

#[test]
fn mdoc_presentation_bound_to_our_request_by_the_session_transcript() {
    use base64::Engine as _;
    let (verifier, jwk) = federation_verifier();
    let rng = SystemRandom::new();
    let ns = "eu.europa.ec.eudi.pid.1";
    let query = CredentialQuery {
        id: "pid_mdoc".into(),
        format: Format::MsoMdoc { doctype: ns.into() },
        claims: ["family_name", "given_name", "birth_date", "tax_id_code"]
            .iter()
            .map(|c| vec![ns.to_owned(), (*c).to_owned()])
            .collect(),
    };
    let (jar, pending) = verifier.request(&[query], NOW, &rng).unwrap();
    let out = wallet(&json!({"now": NOW, "verifier_jwk": jwk,
        "requests": [{"name": "ok_mdoc", "jar": jar}]}));
    let resp = out["responses"][0]["response"].as_str().unwrap();
    let opened = pending.open(resp, NOW, &ResponseLimits::default()).unwrap();
    let device_response = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&opened.vp_token["pid_mdoc"][0])
        .unwrap();
    let transcript = mdoc::session_transcript(
        &opened.client_id,
        &opened.nonce,
        Some(&opened.jwk_thumbprint),
        &opened.response_uri,
    );
    let issuer: Vec<u8> = {
        let h = out["mdoc_issuer_point"].as_str().unwrap();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    // pymdoccbor stamps validFrom with its own wall clock: verify at the wallet's time.
    let now = out["mdoc_now"].as_u64().unwrap();
    let expect = mdoc::Expect {
        now,
        skew: 60,
        doctype: ns,
        transcript: &transcript,
    };
    let parsed = mdoc::DeviceResponse::parse(&device_response, &mdoc::Limits::default()).unwrap();
    let verified = parsed.clone().verify(&issuer, &expect).unwrap();
    let claims = &verified.namespaces[ns];
    assert_eq!(claims["family_name"], "Rossi");
    // Data minimisation: birth_place was not asked for, so not issued into this mdoc.
    assert!(!claims.contains_key("birth_place"));
    let pid = Pid::from_claims(claims).unwrap();
    assert_eq!(pid.tax_id_code.as_deref(), Some("TINIT-RSSMRA80A10H501U"));
    // The same response checked against another request's transcript fails.
    let other = mdoc::session_transcript(
        &opened.client_id,
        "another-nonce",
        Some(&opened.jwk_thumbprint),
        &opened.response_uri,
    );
    let e = parsed
        .verify(
            &issuer,
            &mdoc::Expect {
                transcript: &other,
                ..expect
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "mdoc.device_signature");
}

/// Replicas: the pending request exported where the request was made (private key
/// included), carried as bytes, imported elsewhere, opens the independent wallet's answer;
/// an export missing a member, of another version or with a key that is no P-256 scalar
/// is refused.
#[test]
fn exported_pending_request_opens_the_answer_on_another_replica() {
    let (verifier, jwk) = federation_verifier();
    let rng = SystemRandom::new();
    let (jar, pending) = verifier.request(&[pid_query()], NOW, &rng).unwrap();
    let kid = pending.key_id().to_owned();
    let exported = serde_json::to_vec(&pending.export().unwrap()).unwrap();
    drop(pending);
    let out = wallet(&json!({"now": NOW, "verifier_jwk": jwk,
        "requests": [{"name": "ok", "jar": jar}]}));
    let issuer = Jwks::from_value(&out["issuer_jwks"]).unwrap();
    let resp = out["responses"][0]["response"].as_str().unwrap();
    let value: Value = serde_json::from_slice(&exported).unwrap();
    let imported = Pending::import(&value).unwrap();
    assert_eq!(imported.key_id(), kid);
    assert_eq!(imported.expires_at(), NOW + 300);
    let pid = login(imported, resp, NOW, &issuer).unwrap();
    assert_eq!(pid.family_name, "Rossi");
    let refused = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = value.clone();
        f(v.as_object_mut().unwrap());
        Pending::import(&v).unwrap_err().code()
    };
    assert_eq!(refused(&|o| drop(o.remove("state"))), "openid4vp.config");
    assert_eq!(
        refused(&|o| drop(o.insert("v".into(), json!(2)))),
        "openid4vp.config"
    );
    assert_eq!(
        refused(&|o| drop(o.insert("encs".into(), json!(["A128CBC-HS256"])))),
        "openid4vp.config"
    );
    assert_eq!(
        refused(&|o| drop(o.insert("d".into(), json!("AAAA")))),
        "jose.crypto"
    );
    assert!(Pending::import(&json!([])).is_err());
}
