//! The spid-cie-oidc harness against itself: the package's reference RP logs users in at
//! the package's SPID and CIE OPs through the harness's login driving, with no Varco code on
//! either side. What a Varco test does with [`Federation::login`] is done here with the
//! reference RP's authorization URL instead of Varco's.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use testkit::spidcie::{Federation, Profile, TestUser, get, jwt_claims};

fn fed() -> &'static Federation {
    Federation::shared()
}

fn rp() -> &'static str {
    fed().rp.as_ref().expect("reference RP").entity_id()
}

/// The reference RP's login start for an OP (it resolves the OP's chain, then redirects).
fn begin(p: Profile) -> String {
    let profile = match p {
        Profile::Spid => "spid",
        Profile::Cie => "cie",
    };
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("provider", fed().op(p).entity_id())
        .append_pair("profile", profile)
        .finish();
    format!("{}/authorization?{q}", rp())
}

/// The URL the reference RP sends the browser to: the OP's authorization endpoint with the
/// signed request object.
fn authorization_url(p: Profile) -> String {
    let url = begin(p);
    let r = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&url)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302, "{url}\n{}", fed().logs());
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn full_login(p: Profile, user: &TestUser) {
    fed().add_user(p, user);
    let end = fed()
        .drive(&begin(p), user, None)
        .unwrap_or_else(|e| panic!("{e}\n{}", fed().logs()));
    // The reference RP's landing page after its callback: token, ID token and UserInfo
    // checked on its side, the released attributes shown.
    assert!(
        end.url.starts_with(&format!("{}/echo_attributes", rp())),
        "ended at {} ({})\n{}",
        end.url,
        end.status,
        fed().logs()
    );
    // The page lists the RP's user fields (its RP_ATTR_MAP: names and email, which the RP
    // took from the ID token and the decrypted UserInfo).
    for attr in ["given_name", "family_name", "email"] {
        let v = user.attributes[attr].as_str().unwrap();
        assert!(
            end.body.contains(&format!("<dd>{v}</dd>")),
            "{attr}: {}",
            end.body
        );
    }
}

#[test]
fn reference_rp_logs_in_at_the_spid_op() {
    full_login(
        Profile::Spid,
        &TestUser::citizen("spid-full", "TINIT-RSSMRA80A01H501U", "Mario", "Rossi"),
    );
}

#[test]
fn reference_rp_logs_in_at_the_cie_op() {
    full_login(
        Profile::Cie,
        &TestUser::citizen("cie-full", "TINIT-VRDGPP80A01H501X", "Giuseppe", "Verdi"),
    );
}

/// What a relying party under test gets from [`Federation::login`]: its own redirect_uri
/// with the code, its state and the OP's issuer (RFC 9207).
#[test]
fn login_returns_code_state_and_iss_at_the_redirect_uri() {
    let user = TestUser::citizen("spid-cb", "TINIT-BNCLCU80A01H501Y", "Lucia", "Bianchi");
    fed().add_user(Profile::Spid, &user);
    let auth = authorization_url(Profile::Spid);
    let request = auth
        .split_once("request=")
        .map(|(_, r)| r.split('&').next().unwrap())
        .expect("request object in the authorization URL");
    let sent = jwt_claims(request);
    let redirect_uri = format!("{}/callback", rp());
    let cb = fed().login(&auth, &user, &redirect_uri);
    assert!(cb.url.starts_with(&redirect_uri), "{}", cb.url);
    assert_eq!(cb.error, None, "{cb:?}");
    assert!(cb.code.as_deref().is_some_and(|c| !c.is_empty()), "{cb:?}");
    assert_eq!(cb.state.as_deref(), sent["state"].as_str());
    assert_eq!(cb.iss.as_deref(), Some(fed().op(Profile::Spid).entity_id()));
}

/// A wrong password stays at the OP's login form: the driver says so instead of returning
/// a callback.
#[test]
fn wrong_password_is_refused_by_the_op() {
    let mut user = TestUser::citizen("cie-pw", "TINIT-NREGNN80A01H501Z", "Anna", "Neri");
    fed().add_user(Profile::Cie, &user);
    user.password.push('x');
    let auth = authorization_url(Profile::Cie);
    let err = fed()
        .drive(&auth, &user, Some(&format!("{}/callback", rp())))
        .expect_err("logged in with a wrong password");
    assert!(err.contains("refused the credentials"), "{err}");
}

/// The entities serve their configurations at the URLs their identifiers imply.
#[test]
fn every_entity_serves_its_configuration() {
    for e in [
        &fed().ta,
        fed().op(Profile::Spid),
        fed().op(Profile::Cie),
        fed().rp.as_ref().unwrap(),
    ] {
        let (status, body) = get(&e.configuration_url());
        assert_eq!(status, 200, "{}", e.entity_id());
        assert_eq!(jwt_claims(&body)["sub"], e.entity_id());
    }
}

/// A federation of its own (the anchor only) stops with its handle: its port no longer
/// answers once the [`Federation`] is dropped.
#[test]
fn dropping_a_federation_stops_its_processes() {
    let own = Federation::start(testkit::spidcie::TaOptions {
        spid_op: false,
        cie_op: false,
        ..Default::default()
    });
    let url = own.ta.configuration_url();
    assert_eq!(get(&url).0, 200);
    drop(own);
    let r = ureq::get(&url).call();
    assert!(r.is_err(), "{url} still answers after drop: {r:?}");
}

/// With `require_rp_trust_mark`, the OP refuses a relying party whose configuration lacks
/// the anchor's trust mark (an error redirect to its redirect_uri, no code) and accepts it
/// once the mark is there.
#[test]
fn op_requiring_a_trust_mark_refuses_a_relying_party_without_it() {
    let own = Federation::start(testkit::spidcie::TaOptions {
        cie_op: false,
        reference_rp: true,
        require_rp_trust_mark: true,
        ..Default::default()
    });
    let rp = own.rp.as_ref().unwrap();
    let user = TestUser::citizen("tm-user", "TINIT-GLLFRN80A01H501W", "Franco", "Gialli");
    own.add_user(Profile::Spid, &user);
    let redirect_uri = format!("{}/callback", rp.entity_id());
    let begin = format!(
        "{}/authorization?{}",
        rp.entity_id(),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("provider", own.op(Profile::Spid).entity_id())
            .finish()
    );
    let marks = own.onboard_rp(rp.entity_id(), None).trust_marks;
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].trust_mark_type, own.rp_trust_mark_type());

    own.set_trust_marks(rp, &[]);
    let refused = own.drive(&begin, &user, Some(&redirect_uri)).unwrap();
    assert_eq!(
        refused.params.get("error").map(String::as_str),
        Some("invalid_request"),
        "{refused:?}\n{}",
        own.logs()
    );
    assert!(!refused.params.contains_key("code"));
    // Refused for the reason under test, not another.
    let log = own.op(Profile::Spid).log();
    assert!(log.contains("Trust Marks are not valid"), "{log}");

    own.set_trust_marks(rp, &marks);
    let accepted = own.drive(&begin, &user, Some(&redirect_uri)).unwrap();
    assert!(
        accepted.params.contains_key("code"),
        "{accepted:?}\n{}",
        own.logs()
    );
}
