//! The wallet login's cross-device page: the QR code of the authorization request (drawn
//! here as inline SVG, so the page loads nothing and runs nothing to show it), the same
//! request as a link for a wallet on this device, and the status. Without JavaScript the
//! page reloads itself every few seconds (`<meta http-equiv="refresh">`) and offers an
//! "I have presented" button; `/assets/wallet.js`, when it runs, polls the JSON status
//! instead and moves on as soon as the wallet has answered.
//!
//! May import: other leaf modules only.

use crate::leaf::assets;
use crate::leaf::pages::{Lang, escape, layout};

/// The QR code of `data` as an SVG element (no XML declaration, no style attribute), or
/// `None` when `data` is too long for a QR code.
#[must_use]
pub fn qr_svg(data: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    let start = svg.find("<svg")?;
    Some(
        svg[start..]
            .replacen("<svg", "<svg role=\"img\" aria-labelledby=\"qr-title\"", 1)
            .replacen('>', "><title id=\"qr-title\">QR code</title>", 1),
    )
}

/// What the waiting page shows.
pub struct Waiting<'a> {
    /// Page language.
    pub lang: Lang,
    /// The authorization request (`openid4vp://...?client_id=...&request_uri=...`).
    pub authorization_url: &'a str,
    /// The request object's URL (also in a data attribute, for tests and assistive tools).
    pub request_uri: &'a str,
    /// This page's URL (the refresh and the button).
    pub self_url: &'a str,
    /// The JSON status URL the script polls.
    pub status_url: &'a str,
    /// The same page in the other language.
    pub switch: &'a str,
}

/// The cross-device page.
#[must_use]
pub fn waiting(w: &Waiting<'_>) -> String {
    let it = w.lang == Lang::It;
    let (title, lead, same, button, wait, noscript) = if it {
        (
            "Entra con IT-Wallet",
            "Inquadra il codice QR con l'app del tuo wallet (IT-Wallet o un altro wallet \
             europeo di identità digitale) e conferma la condivisione dei dati richiesti.",
            "Il wallet è su questo dispositivo? Apri il wallet",
            "Ho presentato i dati",
            "In attesa della risposta del wallet…",
            "La pagina si aggiorna da sola ogni 5 secondi.",
        )
    } else {
        (
            "Sign in with IT-Wallet",
            "Scan the QR code with your wallet app (IT-Wallet or another European digital \
             identity wallet) and confirm sharing the data requested.",
            "Is the wallet on this device? Open the wallet",
            "I have presented my data",
            "Waiting for the wallet's answer…",
            "This page refreshes itself every 5 seconds.",
        )
    };
    let qr = qr_svg(w.authorization_url).unwrap_or_default();
    let main = format!(
        "<h1>{title}</h1><p class=\"lead\">{lead}</p>\
         <div class=\"panel wallet\" id=\"wallet\" data-request-uri=\"{ruri}\" \
         data-status-url=\"{status}\" data-next=\"{next}\">\
         <figure class=\"qr\">{qr}</figure>\
         <p><a class=\"btn\" id=\"wallet-link\" href=\"{auth}\">{same}</a></p>\
         <p role=\"status\" aria-live=\"polite\" id=\"wallet-status\">{wait}</p>\
         <form method=\"get\" action=\"/wallet/wait\"><input type=\"hidden\" name=\"id\" \
         value=\"{id}\"><button type=\"submit\" class=\"btn\">{button}</button></form>\
         <noscript><p>{noscript}</p></noscript></div>\
         <script src=\"{js}\" defer></script>",
        title = escape(title),
        lead = escape(lead),
        ruri = escape(w.request_uri),
        status = escape(w.status_url),
        next = escape(w.self_url),
        auth = escape(w.authorization_url),
        same = escape(same),
        wait = escape(wait),
        id = escape(
            w.self_url
                .split_once("id=")
                .map(|(_, v)| v.split('&').next().unwrap_or(v))
                .unwrap_or("")
        ),
        button = escape(button),
        noscript = escape(noscript),
        js = escape(&assets::url("wallet.js")),
    );
    let page = layout(w.lang, title, Some(w.switch), &main);
    // Reload without script: the same page, which completes the login once the wallet
    // has answered. Placed in <head> by replacing the charset tag it follows.
    page.replacen(
        "<meta charset=\"utf-8\">",
        &format!(
            "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5;url={}\">",
            escape(w.self_url)
        ),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_inline_svg_without_style_or_script() {
        let svg = qr_svg("openid4vp://?client_id=x509_hash%3Aabc&request_uri=https%3A%2F%2Fa.example%2Fwallet%2Frequest%2F0123").unwrap();
        assert!(svg.starts_with("<svg role=\"img\""), "{svg}");
        assert!(!svg.contains("style=") && !svg.contains("<script"));
        assert!(qr_svg(&"x".repeat(5000)).is_none());
    }

    #[test]
    fn waiting_page_refreshes_and_names_the_request() {
        let p = waiting(&Waiting {
            lang: Lang::En,
            authorization_url: "openid4vp://?client_id=a&request_uri=b",
            request_uri: "https://v.example/wallet/request/42",
            self_url: "/wallet/wait?id=42&lang=en",
            status_url: "/wallet/wait?id=42&format=json",
            switch: "/wallet/wait?id=42&lang=it",
        });
        assert!(
            p.contains("http-equiv=\"refresh\" content=\"5;url=/wallet/wait?id=42&amp;lang=en\"")
        );
        assert!(p.contains("data-request-uri=\"https://v.example/wallet/request/42\""));
        assert!(p.contains("name=\"id\" value=\"42\""));
        assert!(p.contains("I have presented my data"));
    }
}
