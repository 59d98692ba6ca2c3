//! HTML pages (Italian and English). Every value from a request is escaped.

use std::fmt::Write as _;

use saml::Level;

use crate::request::{IncomingRequest, SignatureCheck};
use crate::response::escape;
use crate::state::level_number;
use crate::users::TestUser;

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}\
    .danger{background:#b00020;color:#fff;padding:.6em 1em;font-weight:bold}\
    .warn{background:#fff3cd;padding:.5em 1em}\
    table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;\
    text-align:left;vertical-align:top}code{word-break:break-all}\
    .user{border:1px solid #999;padding:.5em 1em;margin:1em 0}";

/// The banner every page carries.
const BANNER: &str = "<p class=\"danger\">IdP DI SVILUPPO: solo per sviluppo e test, \
    MAI in produzione. Utenti e chiavi sono finti e pubblici.<br>\
    DEVELOPMENT IdP: for development and tests only, NEVER deploy it. Users and keys are \
    fake and public.</p>";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{BANNER}\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// A plain message page; `detail` is escaped here.
pub(crate) fn message(title_it: &str, title_en: &str, detail: &str) -> String {
    layout(
        &format!("{title_it} / {title_en}"),
        &format!(
            "<h1>{} / {}</h1>\n<p><code>{}</code></p>",
            escape(title_it),
            escape(title_en),
            escape(detail)
        ),
    )
}

/// The home page: what this is and where things are.
pub(crate) fn home(entity_id: &str, sso_url: &str, metadata_url: &str, sps: usize) -> String {
    let sp_note = if sps == 0 {
        "Nessun --sp-metadata: le firme delle richieste NON sono verificate. / \
         No --sp-metadata: request signatures are NOT verified."
            .to_owned()
    } else {
        format!(
            "{sps} sorgenti --sp-metadata: solo quegli SP, richieste firmate obbligatorie. / \
             {sps} --sp-metadata sources: only those SPs, signed requests required."
        )
    };
    layout(
        "Varco dev IdP",
        &format!(
            "<h1>Varco dev IdP</h1>\n<table>\
             <tr><th>entityID</th><td><code>{}</code></td></tr>\
             <tr><th>SSO (HTTP-Redirect, HTTP-POST)</th><td><code>{}</code></td></tr>\
             <tr><th>Metadata</th><td><a href=\"/metadata\"><code>{}</code></a></td></tr>\
             </table>\n<p>{}</p>",
            escape(entity_id),
            escape(sso_url),
            escape(metadata_url),
            escape(&sp_note)
        ),
    )
}

/// The login page for `request`: the test users, a level selector and Cancel.
pub(crate) fn login(request: &IncomingRequest, users: &[TestUser], state: &str) -> String {
    let mut body = String::with_capacity(8192);
    body.push_str("<h1>Accesso di prova / Test login</h1>\n<table>");
    for (k, v) in [
        ("SP (Issuer)", request.issuer.as_str()),
        ("AuthnRequest ID", request.id.as_str()),
        ("ACS", request.acs_url.as_str()),
        ("RelayState", request.relay_state.as_str()),
    ] {
        let _ = write!(
            body,
            "<tr><th>{k}</th><td><code>{}</code></td></tr>",
            escape(v)
        );
    }
    if let Some((min, max)) = request.age_limit {
        let _ = write!(
            body,
            "<tr><th>Limiti di età / Age limits (spid:AgeLimit)</th><td>{min}–{max}</td></tr>"
        );
    }
    let _ = write!(
        body,
        "<tr><th>Livello richiesto / Requested level</th><td>{} (minimum)</td></tr></table>",
        request.level
    );
    body.push('\n');
    body.push_str(match request.signature {
        SignatureCheck::Verified => {
            "<p>Firma della richiesta verificata con i metadati dello SP. / \
             Request signature verified with the SP's metadata.</p>\n"
        }
        SignatureCheck::NotChecked => {
            "<p class=\"warn\">Firma della richiesta NON verificata (nessun --sp-metadata): \
             richiesta accettata così com'è. / Request signature NOT verified (no \
             --sp-metadata): request accepted as is.</p>\n"
        }
    });

    let _ = write!(
        body,
        "<form method=\"post\" action=\"/login\">\n\
         <input type=\"hidden\" name=\"state\" value=\"{}\">\n\
         <p><label>Livello da asserire / Level to assert: <select name=\"level\">",
        escape(state)
    );
    for level in Level::ALL {
        let selected = if level == request.level {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{level}</option>",
            level_number(level)
        );
    }
    body.push_str(
        "</select></label> (un livello inferiore a quello richiesto serve a provare il \
         rifiuto dello SP / a level below the requested one tests the SP's refusal)</p>\n",
    );
    for user in users {
        let _ = write!(
            body,
            "<div class=\"user\"><h2>{}</h2><p>{} &middot; <code>user={}</code> &middot; \
             tipicamente / typically {}</p><table>",
            escape(&user.label()),
            escape(user.kind),
            escape(user.id),
            user.typical_level
        );
        for (name, value) in &user.attributes {
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(name),
                escape(value)
            );
        }
        let _ = write!(
            body,
            "</table><button type=\"submit\" name=\"user\" value=\"{}\">\
             Entra come / Log in as {}</button></div>",
            escape(user.id),
            escape(&user.label())
        );
        body.push('\n');
    }
    body.push_str(
        "<p><button type=\"submit\" name=\"action\" value=\"cancel\">\
         Annulla / Cancel</button> (Response con / with <code>ErrorCode nr25</code>)</p>\n\
         </form>",
    );
    layout("Varco dev IdP - Login", &body)
}

/// The page that posts `SAMLResponse` and `RelayState` to the ACS: a script submits it; a
/// button does without scripts.
pub(crate) fn auto_post(
    acs_url: &str,
    saml_response: &str,
    relay_state: &str,
    nonce: &str,
) -> String {
    layout(
        "Varco dev IdP - SAMLResponse",
        &format!(
            "<form method=\"post\" action=\"{}\">\n\
             <input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">\n\
             <input type=\"hidden\" name=\"RelayState\" value=\"{}\">\n\
             <noscript><button type=\"submit\">Continua / Continue</button></noscript>\n\
             </form>\n<script nonce=\"{}\">document.forms[0].submit();</script>",
            escape(acs_url),
            escape(saml_response),
            escape(relay_state),
            escape(nonce),
        ),
    )
}

/// The page a SPID IdP shows when the person's age does not fit the request's
/// `spid:AgeLimit` (AgID guidelines for minors, "Limitazione dell'accesso ai servizi in
/// rete": the IdP tells the person by name that they lack the age the SP requires). The
/// failed Response goes back only when the person presses the button, so they read it.
pub(crate) fn age_refused(
    given_name: &str,
    sp: &str,
    acs_url: &str,
    saml_response: &str,
    relay_state: &str,
) -> String {
    layout(
        "Varco dev IdP - età non consentita / age not allowed",
        &format!(
            "<h1>Età non consentita / Age not allowed</h1>\n\
             <p>Spiacente {name}, ma non hai l'età richiesta da {sp} per accedere al \
             servizio.</p>\n<p lang=\"en\">Sorry {name}, you are not of the age {sp} requires \
             for this service.</p>\n\
             <form method=\"post\" action=\"{}\">\n\
             <input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">\n\
             <input type=\"hidden\" name=\"RelayState\" value=\"{}\">\n\
             <button type=\"submit\">Torna al servizio / Back to the service</button>\n</form>",
            escape(acs_url),
            escape(saml_response),
            escape(relay_state),
            name = escape(given_name),
            sp = escape(sp),
        ),
    )
}
