//! The pages citizens see: the login choice (SPID, CIE, eIDAS), the signed-in page and the
//! error pages, in Italian and English. One layout for all; styles and icons come from
//! [`crate::leaf::assets`], so a page loads nothing from another origin and has no inline script or
//! style (the server sends `Content-Security-Policy: default-src 'self'`). Every value
//! written into a page goes through [`escape`].
//!
//! May import: other leaf modules only (`assets`, `form`).

use saml::anomaly_message;

pub use saml::Lang;
pub use saml_xml::escape;

use crate::leaf::assets;

/// The whole document: top bar (service name, language switch), `main`, footer.
/// `switch` is the URL of the same page in the other language, when there is one.
pub(crate) fn layout(lang: Lang, title: &str, switch: Option<&str>, main: &str) -> String {
    let (code, nav) = match lang {
        Lang::It => ("it", "Lingua"),
        Lang::En => ("en", "Language"),
    };
    let switch = switch
        .map(|href| {
            let (other, label) = match lang {
                Lang::It => ("en", "English"),
                Lang::En => ("it", "Italiano"),
            };
            format!(
                "<nav aria-label=\"{nav}\"><a href=\"{}\" lang=\"{other}\" hreflang=\"{other}\">\
                 {label}</a></nav>",
                escape(href)
            )
        })
        .unwrap_or_default();
    let footer = match lang {
        Lang::It => "Servizio di accesso con identità digitale (Varco)",
        Lang::En => "Digital identity sign-in service (Varco)",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title>\
         <link rel=\"stylesheet\" href=\"{}\">\
         <link rel=\"icon\" href=\"{}\" type=\"image/svg+xml\"></head><body>\n\
         <header class=\"bar\"><div class=\"wrap\"><a class=\"brand\" href=\"/\">Varco</a>{switch}\
         </div></header>\n\
         <main id=\"main\" class=\"wrap\">\n{main}\n</main>\n\
         <footer><div class=\"wrap\"><p>{footer}</p></div></footer>\n</body></html>\n",
        escape(title),
        escape(&assets::url("varco.css")),
        escape(&assets::url("favicon.svg")),
    )
}

/// A page with the Italian text first and the English one after it, for answers that have no
/// language choice (errors from the ACS, 404, ...). `main_it`/`main_en` are HTML.
pub(crate) fn bilingual(title: &str, main_it: &str, main_en: &str, class: &str) -> String {
    let main = format!(
        "<div class=\"panel{class}\">{main_it}\
         <div class=\"other-lang\" lang=\"en\">{main_en}</div></div>"
    );
    layout(Lang::It, title, None, &main)
}

/// What went wrong, as the citizen should read it.
pub struct Failure<'a> {
    /// Stable error code (also in the logs).
    pub code: &'a str,
    /// Correlation id shared with the log line.
    pub correlation: &'a str,
    /// SPID anomaly number reported by the IdP, if any.
    pub spid_error: Option<u8>,
}

/// The login failure page.
pub fn login_failed(f: &Failure<'_>) -> String {
    let (it, en) = match f
        .spid_error
        .and_then(|n| anomaly_message(n, Lang::It).zip(anomaly_message(n, Lang::En)))
    {
        Some((it, en)) => (it.to_owned(), en.to_owned()),
        None => (
            "Non è stato possibile completare l'accesso. Riprova; se il problema continua, \
             comunica all'assistenza il codice qui sotto."
                .to_owned(),
            "Sign-in could not be completed. Please try again; if the problem persists, give \
             the code below to the help desk."
                .to_owned(),
        ),
    };
    let main_it = format!(
        "<h1>Accesso non riuscito</h1><p>{}</p>\
         <p>Codice: <code>{}</code> &middot; riferimento <code>{}</code></p>\
         <p><a href=\"/\">Torna alla pagina iniziale</a></p>",
        escape(&it),
        escape(f.code),
        escape(f.correlation),
    );
    let main_en = format!(
        "<h2>Sign-in failed</h2><p>{}</p>\
         <p>Code: <code>{}</code> &middot; reference <code>{}</code></p>\
         <p><a href=\"/\">Back to the home page</a></p>",
        escape(&en),
        escape(f.code),
        escape(f.correlation),
    );
    bilingual(
        "Accesso non riuscito / Sign-in failed",
        &main_it,
        &main_en,
        " error",
    )
}

/// The login failure page when the IdP refused a login that asked it to check the service's
/// age limits (`spid:AgeLimit`, SPID for minors) without giving a SPID anomaly number: the
/// IdP has told the person why already; this page says it again in Varco's words.
pub fn login_failed_age_limit(f: &Failure<'_>) -> String {
    let main_it = format!(
        "<h1>Accesso non riuscito</h1><p>Il servizio è riservato a persone di una certa età e \
         il tuo gestore dell'identità digitale non ha consentito l'accesso: la tua età non \
         rientra nei limiti del servizio. Se hai meno di 14 anni, un genitore può accedere per \
         tuo conto dove il servizio lo prevede.</p>\
         <p>Codice: <code>{}</code> &middot; riferimento <code>{}</code></p>\
         <p><a href=\"/\">Torna alla pagina iniziale</a></p>",
        escape(f.code),
        escape(f.correlation),
    );
    let main_en = format!(
        "<h2>Sign-in failed</h2><p>This service is limited to people of certain ages and your \
         digital identity provider did not allow access: your age is outside the service's \
         limits. If you are under 14, a parent can sign in on your behalf where the service \
         provides for it.</p>\
         <p>Code: <code>{}</code> &middot; reference <code>{}</code></p>\
         <p><a href=\"/\">Back to the home page</a></p>",
        escape(f.code),
        escape(f.correlation),
    );
    bilingual(
        "Accesso non riuscito / Sign-in failed",
        &main_it,
        &main_en,
        " error",
    )
}

/// A generic page for requests that are not login failures (400, 404, 405, ...).
pub fn simple(title_it: &str, title_en: &str, text_it: &str, text_en: &str) -> String {
    let para = |t: &str| {
        if t.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", escape(t))
        }
    };
    let main_it = format!("<h1>{}</h1>{}", escape(title_it), para(text_it));
    let main_en = format!("<h2>{}</h2>{}", escape(title_en), para(text_en));
    bilingual(&format!("{title_it} / {title_en}"), &main_it, &main_en, "")
}

/// The logout confirmation asked of a browser that came from another site (`GET /logout`
/// with `Sec-Fetch-Site: cross-site`): a button that posts the form back with its token.
pub fn logout_confirm(token: &str, return_to: Option<&str>) -> String {
    let form = |label: &str| {
        let back = return_to
            .map(|r| {
                format!(
                    "<input type=\"hidden\" name=\"return_to\" value=\"{}\">",
                    escape(r)
                )
            })
            .unwrap_or_default();
        format!(
            "<form method=\"post\" action=\"/logout\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">{back}\
             <button type=\"submit\">{}</button></form>",
            escape(token),
            escape(label)
        )
    };
    let main_it = format!(
        "<h1>Vuoi uscire?</h1><p>Un altro sito ha chiesto di chiudere la tua sessione. \
         Se sei stato tu, conferma.</p>{}",
        form("Esci")
    );
    let main_en = format!(
        "<h2>Sign out?</h2><p>Another site asked to end your session. \
         If that was you, confirm.</p>{}",
        form("Sign out")
    );
    bilingual("Vuoi uscire? / Sign out?", &main_it, &main_en, "")
}

/// The page for a browser with a session: who is signed in.
pub fn signed_in(lang: Lang, name: &str, switch: &str) -> String {
    let (title, text) = match lang {
        Lang::It => ("Accesso effettuato", format!("Accesso effettuato: {name}.")),
        Lang::En => ("Signed in", format!("Signed in: {name}.")),
    };
    let main = format!(
        "<div class=\"panel\"><h1>{title}</h1><p>{}</p></div>",
        escape(&text)
    );
    layout(lang, title, Some(switch), &main)
}

/// One identity provider as the login page offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpChoice {
    /// The entityID (the `idp` parameter of `/saml/login`).
    pub entity_id: String,
    /// What the citizen reads: the configured display name, or the entityID's host.
    pub name: String,
}

/// What the login page shows: the providers of each federation (in the order to show them;
/// an empty federation is not shown), the level and return address every link carries.
pub struct LoginPage<'a> {
    /// Page language.
    pub lang: Lang,
    /// SPID identity providers (already in the random order AgID asks for).
    pub spid: &'a [IdpChoice],
    /// CIE identity providers.
    pub cie: &'a [IdpChoice],
    /// eIDAS nodes (FICEP).
    pub eidas: &'a [IdpChoice],
    /// The `/cns/login` URL (not yet HTML-escaped) when CNS login is configured.
    pub cns: Option<&'a str>,
    /// SPID level (1–3) requested by every link.
    pub level: u8,
    /// Where to return after the login (checked again by `/saml/login`).
    pub return_to: &'a str,
    /// This page in the other language.
    pub switch: &'a str,
    /// HTML appended after the choices (the legacy link, or nothing).
    pub extra: &'a str,
}

/// The `/saml/login` URL (not yet HTML-escaped) that starts a login at `idp`.
pub fn saml_login_url(idp: &str, level: u8, return_to: &str) -> String {
    format!(
        "/saml/login?idp={}&level={level}&return_to={}",
        crate::leaf::form::encode(idp),
        crate::leaf::form::encode(return_to)
    )
}

/// The URL of a page (`path`, `/login` or `/`) in language `lang`, keeping the login
/// parameters it was asked with.
pub fn page_url(path: &str, lang: Lang, level: Option<u8>, return_to: Option<&str>) -> String {
    let code = match lang {
        Lang::It => "it",
        Lang::En => "en",
    };
    let mut url = format!("{path}?lang={code}");
    if let Some(level) = level {
        url.push_str(&format!("&level={level}"));
    }
    if let Some(r) = return_to {
        url.push_str(&format!("&return_to={}", crate::leaf::form::encode(r)));
    }
    url
}

/// Texts of one federation's block on the login page.
struct Block<'a> {
    id: &'a str,
    heading: &'a str,
    text: &'a str,
    button: &'a str,
    button_lang: Option<&'a str>,
    list_label: &'a str,
    icon: &'a str,
    class: &'a str,
    note: &'a str,
}

fn block(out: &mut String, b: &Block<'_>, idps: &[IdpChoice], level: u8, return_to: &str) {
    if idps.is_empty() {
        return;
    }
    let lang_attr = b
        .button_lang
        .map(|l| format!(" lang=\"{l}\""))
        .unwrap_or_default();
    let icon = format!(
        "<img src=\"{}\" alt=\"\" width=\"28\" height=\"28\">",
        escape(&assets::url(b.icon))
    );
    out.push_str(&format!(
        "<section class=\"method\" aria-labelledby=\"{id}-h\">\
         <h2 id=\"{id}-h\">{}</h2><p>{}</p>",
        escape(b.heading),
        escape(b.text),
        id = b.id,
    ));
    match idps {
        // One provider (CIE, the eIDAS node): the button is the link.
        [only] if b.id != "spid" => out.push_str(&format!(
            "<a class=\"btn {}\" id=\"{}-button\" href=\"{}\">{icon}<span{lang_attr}>{}</span></a>",
            b.class,
            b.id,
            escape(&saml_login_url(&only.entity_id, level, return_to)),
            escape(b.button),
        )),
        // A list behind a button; <details> opens it without any script.
        _ => {
            out.push_str(&format!(
                "<details class=\"choice\" id=\"{}-choice\"><summary class=\"btn {}\">{icon}\
                 <span{lang_attr}>{}</span></summary><ul class=\"idps\" aria-label=\"{}\">",
                b.id,
                b.class,
                escape(b.button),
                escape(b.list_label),
            ));
            for idp in idps {
                out.push_str(&format!(
                    "<li><a href=\"{}\">{}</a></li>",
                    escape(&saml_login_url(&idp.entity_id, level, return_to)),
                    escape(&idp.name),
                ));
            }
            out.push_str("</ul></details>");
        }
    }
    if !b.note.is_empty() {
        // The note is fixed HTML of this module (a link), not a value.
        out.push_str(&format!("<p class=\"note\">{}</p>", b.note));
    }
    out.push_str("</section>");
}

/// The CNS block: one link to `/cns/login`, where the browser asks for the card.
fn cns_block(out: &mut String, lang: Lang, url: &str) {
    let (text, button) = match lang {
        Lang::It => (
            "La Carta Nazionale dei Servizi (anche la Tessera Sanitaria attivata): inserisci \
             la carta nel lettore, poi scegli il suo certificato quando il browser lo chiede.",
            "Entra con CNS",
        ),
        Lang::En => (
            "The National Services Card (including an activated health card): insert the \
             card in the reader, then choose its certificate when the browser asks.",
            "Sign in with CNS",
        ),
    };
    out.push_str(&format!(
        "<section class=\"method\" aria-labelledby=\"cns-h\"><h2 id=\"cns-h\">CNS</h2>\
         <p>{}</p><a class=\"btn btn-cns\" id=\"cns-button\" href=\"{}\">\
         <img src=\"{}\" alt=\"\" width=\"28\" height=\"28\"><span>{}</span></a></section>",
        escape(text),
        escape(url),
        escape(&assets::url("cns.svg")),
        escape(button),
    ));
}

/// The wallet login block (`[wallet]`): "Entra con IT-Wallet" on this device or by QR code
/// from another. A PID from a wallet is LoA high, so it is offered at every level.
pub fn wallet_block(lang: Lang, return_to: &str) -> String {
    let (text, button, other) = match lang {
        Lang::It => (
            "Con l'app IT-Wallet o un altro wallet europeo di identità digitale: condividi i \
             dati di identificazione personale (PID) del tuo wallet.",
            "Entra con IT-Wallet",
            "Il wallet è su un altro dispositivo? Mostra il codice QR",
        ),
        Lang::En => (
            "With the IT-Wallet app or another European digital identity wallet: share the \
             personal identification data (PID) in your wallet.",
            "Sign in with IT-Wallet",
            "Wallet on another device? Show the QR code",
        ),
    };
    let query = format!("return_to={}", crate::leaf::form::encode(return_to));
    let lang_q = if lang == Lang::En { "&lang=en" } else { "" };
    format!(
        "<section class=\"method\" aria-labelledby=\"wallet-h\"><h2 id=\"wallet-h\">\
         IT-Wallet / EUDI Wallet</h2><p>{}</p>\
         <a class=\"btn btn-wallet\" id=\"wallet-button\" href=\"{}\"><span>{}</span></a>\
         <p><a id=\"wallet-qr\" href=\"{}\">{}</a></p></section>",
        escape(text),
        escape(&format!("/wallet/login?{query}&device=same{lang_q}")),
        escape(button),
        escape(&format!("/wallet/login?{query}{lang_q}")),
        escape(other),
    )
}

/// The login page: how to sign in, one block per federation that has providers.
pub fn login(p: &LoginPage<'_>) -> String {
    let it = p.lang == Lang::It;
    let (title, lead) = if it {
        (
            "Accedi con la tua identità digitale",
            format!(
                "Scegli come identificarti. Questo servizio richiede un'identità digitale di \
                 livello {} o superiore.",
                p.level
            ),
        )
    } else {
        (
            "Sign in with your digital identity",
            format!(
                "Choose how to identify yourself. This service requires a digital identity of \
                 level {} or higher.",
                p.level
            ),
        )
    };
    let mut main = format!(
        "<h1>{}</h1><p class=\"lead\">{}</p>",
        escape(title),
        escape(&lead)
    );
    let spid = if it {
        Block {
            id: "spid",
            heading: "SPID",
            text: "Il Sistema Pubblico di Identità Digitale: entra con le credenziali del tuo \
                   gestore di identità.",
            button: "Entra con SPID",
            button_lang: None,
            list_label: "Gestori di identità SPID",
            icon: "spid.svg",
            class: "btn-spid",
            note: "Non hai SPID? <a href=\"https://www.spid.gov.it/\">Scopri come ottenerlo</a>",
        }
    } else {
        Block {
            id: "spid",
            heading: "SPID",
            text: "Italy's Public Digital Identity System: sign in with the credentials of \
                   your identity provider.",
            button: "Sign in with SPID",
            button_lang: None,
            list_label: "SPID identity providers",
            icon: "spid.svg",
            class: "btn-spid",
            note: "No SPID yet? <a href=\"https://www.spid.gov.it/en/\">Find out how to get \
                   one</a>",
        }
    };
    let cie = if it {
        Block {
            id: "cie",
            heading: "CIE",
            text: "La Carta d'Identità Elettronica: entra con la tua carta e l'app CieID.",
            button: "Entra con CIE",
            button_lang: None,
            list_label: "Gestori di identità CIE",
            icon: "cie.svg",
            class: "btn-cie",
            note: "",
        }
    } else {
        Block {
            id: "cie",
            heading: "CIE",
            text: "The Italian electronic identity card: sign in with your card and the \
                   CieID app.",
            button: "Sign in with CIE",
            button_lang: None,
            list_label: "CIE identity providers",
            icon: "cie.svg",
            class: "btn-cie",
            note: "",
        }
    };
    let eidas = if it {
        Block {
            id: "eidas",
            heading: "eIDAS",
            text: "Per chi è cittadino di un altro Paese dell'Unione europea: entra con \
                   l'identità digitale del tuo Paese.",
            // The label of the eIDAS login is English in every language.
            button: "Login with eIDAS",
            button_lang: Some("en"),
            list_label: "Nodi eIDAS",
            icon: "eidas.svg",
            class: "btn-eidas",
            note: "",
        }
    } else {
        Block {
            id: "eidas",
            heading: "eIDAS",
            text: "For citizens of other European Union countries: sign in with the digital \
                   identity of your country.",
            button: "Login with eIDAS",
            button_lang: None,
            list_label: "eIDAS nodes",
            icon: "eidas.svg",
            class: "btn-eidas",
            note: "",
        }
    };
    block(&mut main, &spid, p.spid, p.level, p.return_to);
    block(&mut main, &cie, p.cie, p.level, p.return_to);
    block(&mut main, &eidas, p.eidas, p.level, p.return_to);
    if let Some(url) = p.cns {
        cns_block(&mut main, p.lang, url);
    }
    main.push_str(p.extra);
    layout(p.lang, title, Some(p.switch), &main)
}

/// The link to the legacy credential form (`[legacy]`), for the login page at level 1 only:
/// a legacy session is LoA low and cannot open anything higher.
pub fn legacy_link(lang: Lang, return_to: &str) -> String {
    let url = format!(
        "/legacy/login?return_to={}",
        crate::leaf::form::encode(return_to)
    );
    let href = escape(&url);
    match lang {
        Lang::It => format!(
            "<p class=\"note\">Hai ancora le credenziali del portale (in dismissione)? \
             <a href=\"{href}\">Accedi con codice fiscale e password</a></p>"
        ),
        Lang::En => format!(
            "<p class=\"note\">Still have the portal's own credentials (being retired)? \
             <a href=\"{href}\">Sign in with fiscal code and password</a></p>"
        ),
    }
}

/// The OpenID Connect providers on the login page (SPID and CIE over OIDC), beside the
/// SAML ones: `ops` are (short name, display name, is CIE) in configuration order.
pub fn oidc_links(
    lang: Lang,
    ops: &[(String, String, bool)],
    level: u8,
    return_to: &str,
) -> String {
    if ops.is_empty() {
        return String::new();
    }
    let title = match lang {
        Lang::It => "Accedi con SPID o CIE (OpenID Connect)",
        Lang::En => "Sign in with SPID or CIE (OpenID Connect)",
    };
    let mut out = format!("<section class=\"oidc\"><h2>{title}</h2><ul>");
    for (name, display, cie) in ops {
        let url = format!(
            "/oidc/login?op={}&level={level}&return_to={}",
            crate::leaf::form::encode(name),
            crate::leaf::form::encode(return_to)
        );
        let class = if *cie { "cie" } else { "spid" };
        out.push_str(&format!(
            "<li><a class=\"{class}\" href=\"{}\">{}</a></li>",
            escape(&url),
            escape(display)
        ));
    }
    out.push_str("</ul></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_block_offers_both_devices_in_both_languages() {
        let it = wallet_block(Lang::It, "/a b?x=1");
        assert!(it.contains("Entra con IT-Wallet"));
        assert!(
            it.contains("href=\"/wallet/login?return_to=%2Fa+b%3Fx%3D1&amp;device=same\""),
            "{it}"
        );
        let en = wallet_block(Lang::En, "/");
        assert!(en.contains("Sign in with IT-Wallet") && en.contains("&amp;lang=en"));
        assert!(!en.contains("<script") && !en.contains("style="));
    }

    fn idp(id: &str, name: &str) -> IdpChoice {
        IdpChoice {
            entity_id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn login_page_links_every_idp_with_level_and_return_and_escapes_names() {
        let spid = [
            idp("https://a.example/idp", "A <b>"),
            idp("https://b.example", "B"),
        ];
        let eidas = [idp("https://ficep.example", "FICEP")];
        let page = login(&LoginPage {
            lang: Lang::It,
            spid: &spid,
            cie: &[],
            eidas: &eidas,
            cns: Some("/cns/login?return_to=%2F"),
            level: 2,
            return_to: "https://portal.example/x?a=1&b=2",
            switch: "/login?lang=en&level=2",
            extra: "",
        });
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"it\">"));
        assert!(page.contains(
            "href=\"/saml/login?idp=https%3A%2F%2Fa.example%2Fidp&amp;level=2&amp;\
             return_to=https%3A%2F%2Fportal.example%2Fx%3Fa%3D1%26b%3D2\">A &lt;b&gt;</a>"
        ));
        assert!(page.contains("Entra con SPID"));
        assert!(page.contains("<span lang=\"en\">Login with eIDAS</span>"));
        assert!(page.contains("id=\"cns-button\" href=\"/cns/login?return_to=%2F\""));
        assert!(page.contains("Entra con CNS"));
        assert!(
            !page.contains("id=\"cie-h\""),
            "no CIE block without CIE IdPs"
        );
        assert!(page.contains("href=\"/login?lang=en&amp;level=2\" lang=\"en\""));
        assert!(!page.contains("<script") && !page.contains("style="));

        let en = login(&LoginPage {
            lang: Lang::En,
            spid: &spid,
            cie: &[idp("https://cie.example", "CIE")],
            eidas: &[],
            cns: None,
            level: 3,
            return_to: "/",
            switch: "/login?lang=it",
            extra: "",
        });
        assert!(en.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(en.contains("Sign in with SPID") && en.contains("Sign in with CIE"));
        assert!(!en.contains("eidas-h"));
        assert!(!en.contains("cns-h"), "no CNS block without [cns]");
        assert!(en.contains("level=3&amp;return_to=%2F\""));
    }

    #[test]
    fn page_urls_keep_the_login_parameters() {
        assert_eq!(page_url("/", Lang::En, None, None), "/?lang=en");
        assert_eq!(
            page_url("/login", Lang::It, Some(3), Some("/a b")),
            "/login?lang=it&level=3&return_to=%2Fa+b"
        );
    }

    #[test]
    fn error_pages_share_the_layout() {
        let page = login_failed(&Failure {
            code: "saml_x",
            correlation: "<c>",
            spid_error: Some(25),
        });
        assert!(page.contains("/assets/varco.css?v="));
        assert!(page.contains("&lt;c&gt;"));
        assert!(page.contains("<div class=\"other-lang\" lang=\"en\">"));
        let page = simple("Pagina non trovata", "Page not found", "", "");
        assert!(page.contains("<h1>Pagina non trovata</h1>") && !page.contains("<p></p>"));
    }
}
