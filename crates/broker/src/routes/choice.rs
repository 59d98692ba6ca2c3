//! The login page (`GET /login`, and `/` without a session): which language to speak, which
//! identity providers to offer and in which order.
//!
//! - Language: `?lang=it|en` when given, else the best of Italian and English in
//!   `Accept-Language`, else Italian.
//! - Providers: every configured IdP, grouped by federation. SPID providers are shuffled on
//!   every request (AgID asks that no provider be favoured by its position); CIE and eIDAS
//!   keep a stable order.

use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::leaf::http::{Body, html};
use crate::leaf::pages::{self, IdpChoice, Lang, LoginPage};
use crate::leaf::session::Session;
use crate::state::State;
use crate::state::current::current_session;
use hyper::body::Incoming;

/// The page language for a request: `lang` from the query, else `Accept-Language`.
pub fn language<B>(req: &Request<B>) -> Lang {
    let asked = req.uri().query().and_then(|q| {
        crate::leaf::form::text_pairs(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    match asked.as_deref() {
        Some("it") => Lang::It,
        Some("en") => Lang::En,
        _ => negotiate(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
    }
}

/// The preferred of Italian and English in an `Accept-Language` value (RFC 9110 §12.5.4):
/// the highest quality wins, the earlier entry on a tie; Italian when neither is listed.
pub fn negotiate(header: Option<&str>) -> Lang {
    let mut best: Option<(u16, Lang)> = None;
    for entry in header.unwrap_or("").split(',') {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        let lang = match primary.as_str() {
            "it" => Lang::It,
            "en" => Lang::En,
            _ => continue,
        };
        let quality = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, parse_quality);
        if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, lang));
        }
    }
    best.map_or(Lang::It, |(_, l)| l)
}

/// A `qvalue` in thousandths; anything malformed counts as 0 (not acceptable).
fn parse_quality(q: &str) -> u16 {
    let q = q.trim();
    match q.split_once('.') {
        None => match q {
            "1" => 1000,
            _ => 0,
        },
        Some(("1", frac)) if frac.bytes().all(|b| b == b'0') && frac.len() <= 3 => 1000,
        Some(("0", frac)) if frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = format!("{frac:0<3}");
            digits.parse().unwrap_or(0)
        }
        _ => 0,
    }
}

/// What the citizen reads for an IdP: the `display_name` of its configured source, else the
/// name its metadata publishes (`mdui:DisplayName`, `OrganizationDisplayName`), else the host
/// of its entityID (the entityID itself when it is not a URL).
fn idp_name(state: &State, entry: &metadata::IdpEntry) -> String {
    let configured = state
        .refresher
        .sources()
        .iter()
        .find(|s| *s.name == *entry.source)
        .and_then(|s| s.display_name.clone());
    if let Some(name) = configured.or_else(|| entry.display_name.clone()) {
        return name;
    }
    let entity_id = entry.entity_id();
    entity_id
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
        .filter(|host| !host.is_empty())
        .unwrap_or(entity_id)
        .to_owned()
}

/// Shuffles `items` in place (Fisher–Yates with the system random generator). Should the
/// generator fail, the order stays as it was.
fn shuffle<T>(rng: &dyn ring::rand::SecureRandom, items: &mut [T]) {
    let mut random = vec![0u8; 4 * items.len()];
    if rng.fill(&mut random).is_err() {
        return;
    }
    for i in (1..items.len()).rev() {
        let Some(Ok(chunk)) = random.get(4 * i..4 * i + 4).map(<[u8; 4]>::try_from) else {
            return;
        };
        let r = u32::from_le_bytes(chunk);
        // i < items.len() ≤ u32::MAX here; the modulo bias is negligible for a few dozen IdPs.
        let j = (r as usize) % (i + 1);
        items.swap(i, j);
    }
}

/// The configured IdPs of each federation: SPID shuffled, CIE and eIDAS by name.
fn choices(state: &State) -> [Vec<IdpChoice>; 3] {
    let mut out: [Vec<IdpChoice>; 3] = Default::default();
    let snapshot = state.registry.snapshot();
    for entry in snapshot.idps() {
        let idp = &entry.descriptor;
        let slot = match idp.federation {
            saml::Federation::Spid => 0,
            saml::Federation::Cie => 1,
            saml::Federation::Eidas => 2,
        };
        if !state.config.saml_offered(idp.federation) {
            continue;
        }
        if let Some(list) = out.get_mut(slot) {
            list.push(IdpChoice {
                entity_id: idp.entity_id.clone(),
                name: idp_name(state, entry),
            });
        }
    }
    for list in &mut out {
        list.sort_by(|a, b| a.name.cmp(&b.name).then(a.entity_id.cmp(&b.entity_id)));
    }
    shuffle(&state.rng, &mut out[0]);
    out
}

/// The login page at `path` for a request that asked for `level` (or none) and `return_to`
/// (already checked by the caller).
pub fn page<B>(
    state: &State,
    req: &Request<B>,
    path: &str,
    level: Option<u8>,
    return_to: Option<&str>,
) -> Response<Body> {
    let lang = language(req);
    let switch = pages::page_url(path, other(lang), level, return_to);
    let [spid, cie, eidas] = choices(state);
    let default_level = match state.config.default_level {
        saml::Level::L1 => 1,
        saml::Level::L2 => 2,
        saml::Level::L3 => 3,
    };
    let level = level.unwrap_or(default_level);
    // A CNS login is `substantial` (docs/IDENTITY.md): not offered where level 3 is needed,
    // where it could only loop back to this page as a step-up.
    let cns = state
        .config
        .cns
        .as_ref()
        .filter(|_| level <= 2)
        .map(|c| c.login_url(&state.config.public_base_url, return_to.unwrap_or("/")));
    let mut extra = if state.config.wallet.is_some() {
        pages::wallet_block(lang, return_to.unwrap_or("/"))
    } else {
        String::new()
    };
    if state.config.legacy.is_some() && level == 1 {
        extra.push_str(&pages::legacy_link(lang, return_to.unwrap_or("/")));
    }
    if let Some(rp) = &state.oidc {
        let c = &rp.config;
        let ops: Vec<(String, String, bool)> = rp
            .ops()
            .iter()
            .filter(|o| c.protocols(o.federation).oidc())
            .map(|o| {
                let cie = o.federation == crate::features::federation::OpFederation::Cie;
                (o.name.clone(), o.display_name.clone(), cie)
            })
            .collect();
        extra.push_str(&pages::oidc_links(
            lang,
            &ops,
            level,
            return_to.unwrap_or("/"),
        ));
    }
    let body = pages::login(&LoginPage {
        lang,
        spid: &spid,
        cie: &cie,
        eidas: &eidas,
        cns: cns.as_deref(),
        level,
        return_to: return_to.unwrap_or("/"),
        switch: &switch,
        extra: &extra,
    });
    let mut r = html(StatusCode::OK, body);
    // The SPID order changes per request, and the page varies with the language header.
    crate::leaf::http::set(&mut r, header::CACHE_CONTROL, "no-store");
    crate::leaf::http::set(&mut r, header::VARY, "Accept-Language");
    r
}

/// `GET /`: the signed-in page for a session (`name` is who), else the login page.
pub fn home_page<B>(state: &State, req: &Request<B>, name: Option<&str>) -> Response<Body> {
    let Some(name) = name else {
        return page(state, req, "/", None, None);
    };
    let lang = language(req);
    let switch = pages::page_url("/", other(lang), None, None);
    let mut r = html(StatusCode::OK, pages::signed_in(lang, name, &switch));
    crate::leaf::http::set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::It => Lang::En,
        Lang::En => Lang::It,
    }
}

/// `GET /`: who is signed in, or the login page.
pub async fn home(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let name = current_session(state, req).await.as_ref().map(display_name);
    home_page(state, req, name.as_deref())
}

/// `GET /login?level=<1|2|3>&return_to=<url>`: the identity-provider choice, carrying the
/// level a route needs and where to return (checked again by `/saml/login`).
pub fn login_page(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let mut level = None;
    let mut return_to = None;
    for (k, v) in crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "level" if matches!(v.as_ref(), "1" | "2" | "3") => level = v.parse::<u8>().ok(),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let allow_http = state.config.public_base_url.starts_with("http://");
    if state
        .config
        .access
        .return_to(return_to.as_deref().unwrap_or("/"), allow_http)
        .is_none()
    {
        return html(
            StatusCode::BAD_REQUEST,
            pages::simple(
                "Richiesta non valida",
                "Invalid request",
                "L'indirizzo di ritorno non è tra quelli ammessi.",
                "The return address is not one of those allowed.",
            ),
        );
    }
    page(state, req, "/login", level, return_to.as_deref())
}

fn display_name(s: &Session) -> String {
    let p = &s.principal;
    match (&p.given_name, &p.family_name, &p.legal_person) {
        (Some(n), Some(f), _) => format!("{n} {f}"),
        (_, _, Some(l)) if l.company_name.is_some() => l.company_name.clone().unwrap_or_default(),
        _ => p.sub.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::{negotiate, parse_quality, shuffle};
    use crate::leaf::pages::Lang;

    #[test]
    fn accept_language_picks_the_preferred_of_italian_and_english() {
        assert_eq!(negotiate(None), Lang::It);
        assert_eq!(negotiate(Some("")), Lang::It);
        assert_eq!(negotiate(Some("de-DE,fr;q=0.9")), Lang::It);
        assert_eq!(negotiate(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(negotiate(Some("de, en;q=0.5, it;q=0.8")), Lang::It);
        assert_eq!(negotiate(Some("it;q=0.4,EN-gb;q=0.7")), Lang::En);
        assert_eq!(negotiate(Some("en;q=0, it;q=0.1")), Lang::It);
        assert_eq!(negotiate(Some("en;q=0")), Lang::It);
        assert_eq!(negotiate(Some("en;q=bogus,it;q=0.2")), Lang::It);
        assert_eq!(negotiate(Some("it, en")), Lang::It, "a tie keeps the first");
        assert_eq!(parse_quality("0.85"), 850);
        assert_eq!(parse_quality("1.000"), 1000);
        assert_eq!(parse_quality("0.5"), 500);
        assert_eq!(parse_quality("2"), 0);
        assert_eq!(parse_quality("0.1234"), 0);
    }

    #[test]
    fn shuffle_is_a_permutation_and_varies() {
        let rng = ring::rand::SystemRandom::new();
        let sorted: Vec<u32> = (0..12).collect();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut v = sorted.clone();
            shuffle(&rng, &mut v);
            let mut back = v.clone();
            back.sort_unstable();
            assert_eq!(back, sorted);
            seen.insert(v);
        }
        // 50 draws out of 12! orders: all equal would mean no shuffling at all.
        assert!(seen.len() > 1);
        let mut empty: Vec<u32> = Vec::new();
        shuffle(&rng, &mut empty);
    }
}
