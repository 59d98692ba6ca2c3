//! `load_document` (validity, display names), the source record's bookkeeping, and the
//! registry's snapshot semantics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use metadata::{
    FailureReason, Origin, Registry, Snapshot, SourceRecord, SourceState, load_document,
};
use saml::Federation;

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");

fn cert() -> String {
    base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(format!("{KEYS}/idp-rsa2048.crt.der")).unwrap())
}

fn entity(id: &str, attrs: &str, extra: &str) -> String {
    format!(
        r#"<md:EntityDescriptor entityID="{id}"{attrs}><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{id}/sso"/></md:IDPSSODescriptor>{extra}</md:EntityDescriptor>"#,
        cert()
    )
}

fn aggregate(attrs: &str, entities: &[String]) -> String {
    format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"{attrs}>{}</md:EntitiesDescriptor>"#,
        entities.concat()
    )
}

/// 2026-01-01T00:00:00Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn load(xml: &str) -> Result<metadata::Loaded, metadata::Error> {
    load_document(xml.as_bytes(), Federation::Spid, &[], now(), "src")
}

#[test]
fn validity_is_read_from_the_root() {
    let xml = aggregate(
        r#" validUntil="2026-02-01T00:00:00Z" cacheDuration="PT6H""#,
        &[entity("https://a.example", "", "")],
    );
    let loaded = load(&xml).unwrap();
    assert_eq!(
        loaded.validity.valid_until,
        saml::parse_instant("2026-02-01T00:00:00Z")
    );
    assert_eq!(
        loaded.validity.cache_duration,
        Some(Duration::from_secs(6 * 3600))
    );
    assert_eq!(&*loaded.idps[0].source, "src");
}

#[test]
fn expired_or_unreadable_validity_is_refused() {
    let e = |attrs| load(&aggregate(attrs, &[entity("https://a.example", "", "")])).unwrap_err();
    assert_eq!(
        e(r#" validUntil="2025-12-31T23:59:59Z""#).code(),
        "metadata_expired"
    );
    assert_eq!(
        e(r#" validUntil="2025-12-31T23:59:59Z""#).reason(),
        FailureReason::Expired
    );
    // Exactly at validUntil is already too late.
    assert_eq!(
        e(r#" validUntil="2026-01-01T00:00:00Z""#).code(),
        "metadata_expired"
    );
    assert_eq!(
        e(r#" validUntil="tomorrow""#).code(),
        "metadata_invalid_validity"
    );
    assert_eq!(
        e(r#" cacheDuration="6 hours""#).code(),
        "metadata_invalid_validity"
    );
    assert_eq!(
        e(r#" cacheDuration="6 hours""#).reason(),
        FailureReason::Invalid
    );
}

#[test]
fn nested_entities_past_their_own_valid_until_are_left_out() {
    let xml = aggregate(
        "",
        &[
            entity("https://a.example", "", ""),
            entity(
                "https://b.example",
                r#" validUntil="2025-01-01T00:00:00Z""#,
                "",
            ),
        ],
    );
    let loaded = load(&xml).unwrap();
    assert_eq!(loaded.idps.len(), 1);
    assert_eq!(loaded.idps[0].entity_id(), "https://a.example");
    // All of them expired: no IdP at all.
    let xml = aggregate(
        "",
        &[entity(
            "https://b.example",
            r#" validUntil="2025-01-01T00:00:00Z""#,
            "",
        )],
    );
    assert_eq!(
        load(&xml).unwrap_err().code(),
        "metadata_no_identity_provider"
    );
}

#[test]
fn display_name_falls_back_to_the_organization() {
    let org = r#"<md:Organization><md:OrganizationName xml:lang="it">Org SpA</md:OrganizationName><md:OrganizationDisplayName xml:lang="en">Org (en)</md:OrganizationDisplayName><md:OrganizationDisplayName xml:lang="it">Org</md:OrganizationDisplayName><md:OrganizationURL xml:lang="it">https://org.example</md:OrganizationURL></md:Organization>"#;
    let loaded = load(&aggregate("", &[entity("https://a.example", "", org)])).unwrap();
    assert_eq!(loaded.idps[0].display_name.as_deref(), Some("Org"));
    assert_eq!(loaded.idps[0].logo, None);
    let loaded = load(&aggregate("", &[entity("https://a.example", "", "")])).unwrap();
    assert_eq!(loaded.idps[0].display_name, None);
}

#[test]
fn a_record_keeps_its_document_through_failures_until_it_expires() {
    let xml = aggregate(
        r#" validUntil="2026-01-03T00:00:00Z""#,
        &[entity("https://a.example", "", "")],
    );
    let loaded = load(&xml).unwrap();
    let mut r = SourceRecord::new("src", Federation::Spid, true, now());
    assert!(r.due(now()));
    assert_eq!(r.state, SourceState::Pending);
    let later = now() + Duration::from_secs(3600);
    r.succeed(loaded.idps, loaded.validity, Origin::Source, now(), later);
    assert_eq!(r.state, SourceState::Fresh);
    assert!(!r.due(now()));
    assert!(r.due(later));

    r.fail(FailureReason::Timeout, "slow".into(), later, later);
    r.fail(FailureReason::Timeout, "slow".into(), later, later);
    assert_eq!(r.state, SourceState::Stale);
    assert_eq!(r.idps.len(), 1);
    assert_eq!(r.consecutive_failures, 2);
    let stats = r.stats(now());
    assert_eq!(stats.attempts, 3);
    assert!(stats.failures.contains(&(FailureReason::Timeout, 2)));
    assert!(stats.failures.contains(&(FailureReason::Signature, 0)));
    assert_eq!(stats.seconds_to_valid_until, Some(2 * 86_400));
    assert_eq!(stats.idp_cert_expiry.len(), 1);

    let day2 = now() + Duration::from_secs(2 * 86_400 - 1);
    assert!(!r.expire(day2));
    let day2 = now() + Duration::from_secs(2 * 86_400);
    assert!(r.expire(day2));
    assert_eq!(r.state, SourceState::Expired);
    assert!(r.idps.is_empty());
    assert_eq!(
        r.stats(day2 + Duration::from_secs(5))
            .seconds_to_valid_until,
        Some(-5)
    );
}

#[test]
fn an_entry_carries_the_earliest_valid_until_of_root_groups_and_itself() {
    let instant = |s| saml::parse_instant(s);
    let group = |attrs: &str, inner: &[String]| {
        format!(
            r#"<md:EntitiesDescriptor{attrs}>{}</md:EntitiesDescriptor>"#,
            inner.concat()
        )
    };
    let xml = aggregate(
        r#" validUntil="2026-03-01T00:00:00Z""#,
        &[
            entity("https://root.example", "", ""),
            group(
                r#" validUntil="2026-02-01T00:00:00Z""#,
                &[
                    entity("https://group.example", "", ""),
                    entity(
                        "https://own.example",
                        r#" validUntil="2026-01-15T00:00:00Z""#,
                        "",
                    ),
                    // Later than its group: the group's applies.
                    entity(
                        "https://later.example",
                        r#" validUntil="2026-12-01T00:00:00Z""#,
                        "",
                    ),
                ],
            ),
        ],
    );
    let loaded = load(&xml).unwrap();
    let until = |id: &str| {
        loaded
            .idps
            .iter()
            .find(|i| i.entity_id() == id)
            .unwrap()
            .valid_until
    };
    assert_eq!(
        until("https://root.example"),
        instant("2026-03-01T00:00:00Z")
    );
    assert_eq!(
        until("https://group.example"),
        instant("2026-02-01T00:00:00Z")
    );
    assert_eq!(
        until("https://own.example"),
        instant("2026-01-15T00:00:00Z")
    );
    assert_eq!(
        until("https://later.example"),
        instant("2026-02-01T00:00:00Z")
    );
    // Without any validUntil, no limit from the document.
    let loaded = load(&aggregate("", &[entity("https://a.example", "", "")])).unwrap();
    assert_eq!(loaded.idps[0].valid_until, None);
}

#[test]
fn get_valid_refuses_an_entry_at_its_valid_until_without_a_refresh() {
    let xml = aggregate(
        "",
        &[entity(
            "https://own.example",
            r#" validUntil="2026-01-15T00:00:00Z""#,
            "",
        )],
    );
    let loaded = load(&xml).unwrap();
    let registry = Registry::new(Snapshot::build(loaded.idps).0);
    let end = saml::parse_instant("2026-01-15T00:00:00Z").unwrap();
    let before = end - Duration::from_secs(1);
    assert!(registry.get_valid("https://own.example", before).is_some());
    assert!(registry.get_valid("https://own.example", end).is_none());
    assert!(
        registry
            .get_valid("https://own.example", end + Duration::from_secs(1))
            .is_none()
    );
    // The plain lookup still finds it: only `get_valid` is for the login path.
    assert!(registry.get("https://own.example").is_some());
    assert!(
        !registry
            .get("https://own.example")
            .unwrap()
            .is_valid_at(end)
    );
}

#[test]
fn a_malformed_entity_is_skipped_not_the_whole_aggregate() {
    let no_key = entity("https://nokey.example", "", "").replace(&cert(), "");
    let no_sso = entity("https://nosso.example", "", "").replace(
        r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://nosso.example/sso"/>"#,
        "",
    );
    let xml = aggregate(
        "",
        &[
            entity("https://a.example", "", ""),
            no_key.clone(),
            no_sso.clone(),
        ],
    );
    let loaded = load(&xml).unwrap();
    let ids: Vec<_> = loaded.idps.iter().map(|i| i.entity_id()).collect();
    assert_eq!(ids, ["https://a.example"]);
    let skipped: Vec<_> = loaded
        .skipped
        .iter()
        .map(|s| (s.entity_id.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "https://nokey.example",
                "signing certificate is not a usable X.509 certificate"
            ),
            (
                "https://nosso.example",
                "no SingleSignOnService for HTTP-Redirect or HTTP-POST"
            ),
        ]
    );
    // Only malformed entries left: refused, with the first one's reason.
    let err = load(&aggregate("", &[no_key.clone(), no_sso])).unwrap_err();
    assert_eq!(err.code(), "metadata_invalid_entity");
    assert!(err.to_string().contains("https://nokey.example"), "{err}");
    // A malformed root EntityDescriptor is still refused.
    let root = no_key.replace(
        r#"<md:EntityDescriptor entityID"#,
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID"#,
    );
    assert_eq!(load(&root).unwrap_err().code(), "metadata_invalid_entity");
}

#[test]
fn a_document_without_valid_until_is_capped_by_the_ceiling() {
    let xml = aggregate(
        "",
        &[
            entity("https://a.example", "", ""),
            entity(
                "https://b.example",
                r#" validUntil="2026-01-02T00:00:00Z""#,
                "",
            ),
        ],
    );
    let ceiling = now() + Duration::from_secs(7 * 86_400);
    let capped = |ceiling| {
        metadata::load_document_capped(
            xml.as_bytes(),
            Federation::Spid,
            &[],
            now(),
            "src",
            Some(ceiling),
        )
    };
    let loaded = capped(ceiling).unwrap();
    assert_eq!(loaded.validity.valid_until, Some(ceiling));
    let until = |id: &str| {
        loaded
            .idps
            .iter()
            .find(|i| i.entity_id() == id)
            .unwrap()
            .valid_until
    };
    assert_eq!(until("https://a.example"), Some(ceiling));
    // An earlier validUntil of its own still applies.
    assert_eq!(
        until("https://b.example"),
        saml::parse_instant("2026-01-02T00:00:00Z")
    );
    // A ceiling earlier than the root's validUntil wins over it.
    let dated = aggregate(
        r#" validUntil="2027-01-01T00:00:00Z""#,
        &[entity("https://a.example", "", "")],
    );
    let loaded = metadata::load_document_capped(
        dated.as_bytes(),
        Federation::Spid,
        &[],
        now(),
        "src",
        Some(ceiling),
    )
    .unwrap();
    assert_eq!(loaded.validity.valid_until, Some(ceiling));
    // A document accepted more than the maximum age ago is expired.
    assert_eq!(capped(now()).unwrap_err().code(), "metadata_expired");
}

#[test]
fn registry_swaps_whole_snapshots_and_refuses_duplicates_from_every_source() {
    let one = load(&aggregate("", &[entity("https://a.example", "", "")])).unwrap();
    let two = load_document(
        aggregate(
            "",
            &[
                entity("https://a.example", "", ""),
                entity("https://b.example", "", ""),
            ],
        )
        .as_bytes(),
        Federation::Cie,
        &[],
        now(),
        "other",
    )
    .unwrap();
    // Whichever order the sources come in, a.example is served by neither.
    for entries in [
        one.idps
            .iter()
            .chain(&two.idps)
            .cloned()
            .collect::<Vec<_>>(),
        two.idps.iter().chain(&one.idps).cloned().collect(),
    ] {
        let (snapshot, duplicates) = Snapshot::build(entries);
        let ids: Vec<_> = snapshot.idps().iter().map(|i| i.entity_id()).collect();
        assert_eq!(ids, ["https://b.example"]);
        assert!(snapshot.get("https://a.example").is_none());
        let refused: Vec<_> = duplicates
            .iter()
            .map(|d| (d.entity_id(), &*d.source))
            .collect();
        assert_eq!(
            refused,
            [("https://a.example", "other"), ("https://a.example", "src")]
        );
    }
    let (snapshot, _) = Snapshot::build(one.idps.iter().chain(&two.idps).skip(1).cloned());
    assert_eq!(
        snapshot.len(),
        2,
        "once the first source is gone, both are served"
    );

    let registry = Registry::new(Snapshot::build(one.idps.iter().cloned()).0);
    assert!(!registry.is_ready());
    let held = registry.get("https://a.example").unwrap();
    assert_eq!(held.descriptor.federation, Federation::Spid);
    registry.publish(Snapshot::build(two.idps.iter().skip(1).cloned()).0);
    assert!(registry.get("https://a.example").is_none());
    assert!(registry.get("https://b.example").is_some());
    // The entry a reader held is still whole.
    assert_eq!(held.entity_id(), "https://a.example");
    registry.set_ready(true);
    assert!(registry.is_ready());
}
