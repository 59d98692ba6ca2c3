//! Every algorithm of the allow-list against tokens PyJWT signs at test time
//! (`tests/py/algs.py`, the project's PyJWT venv): RS256/384/512, PS256/384/512, ES256/384
//! verify; ES512 (P-521, recommended by the SPID/CIE rules) is refused, ring has no P-521.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jose::{Alg, Jwks, Jws, Limits, Typ};
use serde_json::Value;

fn vectors() -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/algs.py");
    serde_json::from_slice(&testkit::python::run("pyjwt", &script, &[], None)).unwrap()
}

#[test]
fn pyjwt_tokens_in_every_allowed_algorithm_verify() {
    let v = vectors();
    // The P-521 key is left out of the set (no EC P-521 support), the others parse.
    let keys = Jwks::from_value(&serde_json::json!({
        "keys": v["jwks"]["keys"].as_array().unwrap().iter()
            .filter(|k| k["crv"] != "P-521").cloned().collect::<Vec<_>>()
    }))
    .unwrap();
    let typ = Typ::Exactly("entity-statement+jwt");
    for name in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
    ] {
        let token = v["tokens"][name].as_str().unwrap();
        let jws = Jws::decode(token, typ, &Limits::default()).unwrap();
        assert_eq!(jws.alg(), Alg::from_name(name).unwrap());
        let claims = jws
            .into_verified_claims(&keys)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(claims["n"], 1);
    }
    // A token of one algorithm under another algorithm's key id: refused.
    let rs = v["tokens"]["RS256"].as_str().unwrap();
    let mut parts: Vec<String> = rs.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    parts[0] = b64.encode(r#"{"alg":"RS256","kid":"ES256","typ":"entity-statement+jwt"}"#);
    let e = Jws::decode(&parts.join("."), typ, &Limits::default())
        .unwrap()
        .verify(&keys)
        .unwrap_err();
    assert_eq!(e.code(), "jose.key_alg_mismatch");
}

#[test]
fn es512_is_refused_for_want_of_p521() {
    let v = vectors();
    let p521 = v["jwks"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["crv"] == "P-521")
        .unwrap();
    let e = Jwks::from_value(&serde_json::json!({ "keys": [p521] })).unwrap_err();
    assert_eq!(e.code(), "jose.jwk");
    let token = v["tokens"]["ES512"].as_str().unwrap();
    let e = Jws::decode(
        token,
        Typ::Exactly("entity-statement+jwt"),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "jose.alg_unsupported");
}
