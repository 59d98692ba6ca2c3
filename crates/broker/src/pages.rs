//! Plain pages for citizens: Italian first, then English, no external resources.

use saml::{Lang, anomaly_message};

pub use saml_xml::escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.4rem}\
.en{color:#444;border-top:1px solid #ccc;margin-top:2rem;padding-top:1rem}\
code{background:#f2f2f2;padding:.1rem .3rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        escape(title)
    )
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
    let body = format!(
        "<main><h1>Accesso non riuscito</h1><p>{}</p>\
         <p>Codice: <code>{}</code> &middot; riferimento <code>{}</code></p>\
         <p><a href=\"/\">Torna alla pagina iniziale</a></p>\
         <div class=\"en\" lang=\"en\"><h1>Sign-in failed</h1><p>{}</p>\
         <p>Code: <code>{}</code> &middot; reference <code>{}</code></p>\
         <p><a href=\"/\">Back to the home page</a></p></div></main>",
        escape(&it),
        escape(f.code),
        escape(f.correlation),
        escape(&en),
        escape(f.code),
        escape(f.correlation),
    );
    page("Accesso non riuscito / Sign-in failed", &body)
}

/// A generic page for requests that are not login failures (400, 404, 405, ...).
pub fn simple(title_it: &str, title_en: &str, text_it: &str, text_en: &str) -> String {
    let body = format!(
        "<main><h1>{}</h1><p>{}</p><div class=\"en\" lang=\"en\"><h1>{}</h1><p>{}</p></div></main>",
        escape(title_it),
        escape(text_it),
        escape(title_en),
        escape(text_en)
    );
    page(&format!("{title_it} / {title_en}"), &body)
}

/// The landing page: who is logged in, or a sign-in link per identity provider (the full
/// login page with the SPID button arrives with the front-door work).
pub fn home(name: Option<&str>, idps: &[&str], level: Option<u8>, return_to: &str) -> String {
    if let Some(n) = name {
        return simple(
            "Varco",
            "Varco",
            &format!("Accesso effettuato: {n}."),
            &format!("Signed in: {n}."),
        );
    }
    let back: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let mut links = String::new();
    for idp in idps {
        let q: String = form_urlencoded::byte_serialize(idp.as_bytes()).collect();
        links.push_str(&format!("<li>{}: ", escape(idp)));
        // A route that needs a level offers that level and above only.
        for level in level.unwrap_or(1).clamp(1, 3)..=3 {
            links.push_str(&format!(
                " <a href=\"/saml/login?idp={q}&amp;level={level}&amp;return_to={back}\">Entra con SPID L{level} / \
                 Sign in with SPID L{level}</a>"
            ));
        }
        links.push_str("</li>");
    }
    let body = format!(
        "<main><h1>Varco</h1><p>Nessuna sessione attiva. Scegli il gestore di identità.</p>\
         <p lang=\"en\">No active session. Choose your identity provider.</p><ul>{links}</ul></main>"
    );
    page("Varco", &body)
}
