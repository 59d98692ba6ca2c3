//! User-facing messages for the SPID "user anomalies" an IdP reports in a failed Response.
//!
//! The SPID technical rules (table "Messaggi di errore", section "Anomalie derivanti
//! dall'utente") have the IdP answer `Responder` / `AuthnFailed` with a `StatusMessage`
//! `ErrorCode nrNN`, and ask the SP to show a courtesy page explaining why access failed. The
//! numbers defined there are 19, 20, 21, 22, 23, 25 and 30 (24 is reserved). The wording
//! below is ours.

/// The language of a user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Italian.
    It,
    /// English.
    En,
}

/// The message to show the user for SPID anomaly `code` (see [`crate::Error::Status`]'s
/// `spid_error`), or `None` for a number the rules do not define as a user anomaly; show a
/// generic failure message then.
pub fn anomaly_message(code: u8, lang: Lang) -> Option<&'static str> {
    let (it, en) = match code {
        19 => (
            "Accesso non riuscito: le credenziali inserite sono risultate errate troppe volte. \
             Riprova più tardi con le credenziali corrette.",
            "Sign-in failed: wrong credentials were entered too many times. Try again later \
             with the correct credentials.",
        ),
        20 => (
            "Accesso non riuscito: la tua identità digitale non ha credenziali del livello di \
             sicurezza richiesto da questo servizio.",
            "Sign-in failed: your digital identity has no credentials of the security level \
             this service requires.",
        ),
        21 => (
            "Accesso non riuscito: il tempo a disposizione per completare l'autenticazione è \
             scaduto. Riprova.",
            "Sign-in failed: the time allowed to complete authentication ran out. Please try \
             again.",
        ),
        22 => (
            "Accesso non riuscito: non hai dato il consenso all'invio dei tuoi dati a questo \
             servizio.",
            "Sign-in failed: you did not consent to sending your data to this service.",
        ),
        23 => (
            "Accesso non riuscito: la tua identità digitale risulta sospesa o revocata, oppure \
             le credenziali sono bloccate. Contatta il tuo gestore dell'identità.",
            "Sign-in failed: your digital identity is suspended or revoked, or its credentials \
             are locked. Contact your identity provider.",
        ),
        25 => (
            "Accesso annullato: hai interrotto il processo di autenticazione.",
            "Sign-in cancelled: you stopped the authentication process.",
        ),
        30 => (
            "Accesso non riuscito: hai usato un tipo di identità digitale diverso da quello \
             richiesto dal servizio (ad esempio un'identità per uso professionale al posto di \
             una personale, o viceversa).",
            "Sign-in failed: you used a kind of digital identity other than the one this \
             service requires (for example a professional identity instead of a personal one, \
             or the reverse).",
        ),
        _ => return None,
    };
    Some(match lang {
        Lang::It => it,
        Lang::En => en,
    })
}

/// The SPID anomaly number of a `StatusMessage` `ErrorCode nrNN` (exactly two digits), when
/// it is a user anomaly (19..=30).
pub(crate) fn parse_spid_error(message: &str) -> Option<u8> {
    let digits = message.trim().strip_prefix("ErrorCode nr")?;
    if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = digits.parse().ok()?;
    (19..=30).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_user_anomaly_has_both_languages() {
        for code in [19, 20, 21, 22, 23, 25, 30] {
            let it = anomaly_message(code, Lang::It);
            let en = anomaly_message(code, Lang::En);
            assert!(it.is_some_and(|m| !m.is_empty()), "{code}");
            assert!(en.is_some_and(|m| !m.is_empty()), "{code}");
            assert_ne!(it, en);
        }
    }

    #[test]
    fn reserved_and_undefined_numbers_have_no_message() {
        for code in [0, 1, 8, 18, 24, 26, 27, 28, 29, 31, 255] {
            assert_eq!(anomaly_message(code, Lang::It), None, "{code}");
            assert_eq!(anomaly_message(code, Lang::En), None, "{code}");
        }
    }

    #[test]
    fn spid_error_numbers_are_parsed_strictly() {
        assert_eq!(parse_spid_error("ErrorCode nr19"), Some(19));
        assert_eq!(parse_spid_error(" ErrorCode nr25 \n"), Some(25));
        assert_eq!(parse_spid_error("ErrorCode nr30"), Some(30));
        assert_eq!(parse_spid_error("ErrorCode nr18"), None);
        assert_eq!(parse_spid_error("ErrorCode nr31"), None);
        assert_eq!(parse_spid_error("ErrorCode nr8"), None);
        assert_eq!(parse_spid_error("ErrorCode nr190"), None);
        assert_eq!(parse_spid_error("errorcode nr19"), None);
        assert_eq!(parse_spid_error("ErrorCode nr+9"), None);
        assert_eq!(parse_spid_error(""), None);
    }
}
