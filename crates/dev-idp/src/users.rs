//! The fixed test users. Every value is invented; the fiscal codes and the VAT number carry
//! valid check characters so that SP-side format checks pass.

use saml::Level;

/// One test identity and the attributes the IdP releases for it.
#[derive(Debug, Clone)]
pub(crate) struct TestUser {
    /// The value of the `user` field of `POST /login`.
    pub(crate) id: &'static str,
    /// What kind of identity this imitates (shown on the login page).
    pub(crate) kind: &'static str,
    /// The level this identity is meant for (a hint on the page; any level can be chosen).
    pub(crate) typical_level: Level,
    /// SAML attributes, by SPID name, in release order.
    pub(crate) attributes: Vec<(&'static str, String)>,
}

impl TestUser {
    /// The attribute `name`, if the user has it.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A human label: given and family name, or the company name.
    pub(crate) fn label(&self) -> String {
        match (self.attribute("name"), self.attribute("familyName")) {
            (Some(n), Some(f)) => format!("{n} {f}"),
            _ => self.attribute("companyName").unwrap_or(self.id).to_owned(),
        }
    }
}

/// Every test user, in the order the login page lists them.
pub(crate) fn all() -> Vec<TestUser> {
    let attrs = |list: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        list.iter().map(|(n, v)| (*n, (*v).to_owned())).collect()
    };
    let mario_cf = fiscal_code("RSSMRA80A01H501");
    let giulia_cf = fiscal_code("BNCGLI85E52F205");
    let luca_cf = fiscal_code("VRDLCU90S23F839");
    let company_vat = vat_number("1234567890");
    // Issue 24: a minor with their own SPID (AgID Determinazione 51/2022: from 14), a parent,
    // a guardian and a company's legal representative (SPID legal-person identity, `LP`).
    let sofia_cf = fiscal_code("SPSSFO11D55F839");
    let paolo_cf = fiscal_code("SPSPLA78B10F839");
    let franca_cf = fiscal_code("NREFNC65L60H501");
    let marco_cf = fiscal_code("CLMMRC72P05F205");
    // An amministratrice di sostegno (support administrator) and an intermediary (a
    // commercialista acting for clients): their records come from the portal's sources, the
    // IdP only proves who they are.
    let rosa_cf = fiscal_code("FRRRSO70C45L219");
    let carlo_cf = fiscal_code("GLLCRL75H12H501");
    let acting = vec![
        TestUser {
            id: "sofia.esposito",
            kind: "SPID per minori (15 anni) / SPID for minors (aged 15)",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000006"),
                ("name", "Sofia"),
                ("familyName", "Esposito"),
                ("fiscalNumber", &format!("TINIT-{sofia_cf}")),
                ("dateOfBirth", "2011-04-15"),
                ("email", "sofia.esposito@example.org"),
            ]),
        },
        TestUser {
            id: "paolo.esposito",
            kind: "SPID, genitore / parent",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000007"),
                ("name", "Paolo"),
                ("familyName", "Esposito"),
                ("fiscalNumber", &format!("TINIT-{paolo_cf}")),
                ("dateOfBirth", "1978-02-10"),
                ("email", "paolo.esposito@example.org"),
            ]),
        },
        TestUser {
            id: "franca.neri",
            kind: "SPID, tutrice / guardian",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000008"),
                ("name", "Franca"),
                ("familyName", "Neri"),
                ("fiscalNumber", &format!("TINIT-{franca_cf}")),
                ("dateOfBirth", "1965-07-20"),
            ]),
        },
        TestUser {
            id: "marco.colombo",
            kind: "SPID persona giuridica, rappresentante legale / legal representative",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000009"),
                ("name", "Marco"),
                ("familyName", "Colombo"),
                ("fiscalNumber", &format!("TINIT-{marco_cf}")),
                ("dateOfBirth", "1972-09-05"),
                ("companyName", "Esempio S.r.l."),
                ("ivaCode", &format!("VATIT-{company_vat}")),
                ("companyFiscalNumber", &format!("TINIT-{company_vat}")),
                ("spid:Purpose", "LP"),
            ]),
        },
        TestUser {
            id: "rosa.ferrari",
            kind: "SPID, amministratrice di sostegno / support administrator",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000010"),
                ("name", "Rosa"),
                ("familyName", "Ferrari"),
                ("fiscalNumber", &format!("TINIT-{rosa_cf}")),
                ("dateOfBirth", "1970-03-05"),
            ]),
        },
        TestUser {
            id: "carlo.gallo",
            kind: "SPID, intermediario (commercialista) / intermediary (accountant)",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000011"),
                ("name", "Carlo"),
                ("familyName", "Gallo"),
                ("fiscalNumber", &format!("TINIT-{carlo_cf}")),
                ("dateOfBirth", "1975-06-12"),
            ]),
        },
    ];
    let mut users = vec![
        TestUser {
            id: "mario.rossi",
            kind: "SPID, cittadino / citizen",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000001"),
                ("name", "Mario"),
                ("familyName", "Rossi"),
                ("fiscalNumber", &format!("TINIT-{mario_cf}")),
                ("email", "mario.rossi@example.org"),
                ("mobilePhone", "+393331234567"),
                ("dateOfBirth", "1980-01-01"),
                ("placeOfBirth", "H501"),
                ("countyOfBirth", "RM"),
                ("gender", "M"),
                ("address", "Via Cristoforo Colombo 44 00147 Roma RM"),
                ("digitalAddress", "mario.rossi@pec.example.org"),
            ]),
        },
        TestUser {
            id: "giulia.bianchi",
            kind: "SPID L3, cittadina con smart card / citizen with smart card",
            typical_level: Level::L3,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000002"),
                ("name", "Giulia"),
                ("familyName", "Bianchi"),
                ("fiscalNumber", &format!("TINIT-{giulia_cf}")),
                ("email", "giulia.bianchi@example.org"),
                ("mobilePhone", "+393471234567"),
                ("dateOfBirth", "1985-05-12"),
                ("placeOfBirth", "F205"),
                ("countyOfBirth", "MI"),
                ("gender", "F"),
                ("address", "Piazza del Duomo 1 20122 Milano MI"),
            ]),
        },
        TestUser {
            id: "luca.verdi",
            kind: "CIE (Carta d'Identità Elettronica)",
            typical_level: Level::L3,
            attributes: attrs(&[
                ("name", "Luca"),
                ("familyName", "Verdi"),
                ("fiscalNumber", &format!("TINIT-{luca_cf}")),
                ("dateOfBirth", "1990-11-23"),
            ]),
        },
        TestUser {
            id: "anna.schmidt",
            kind: "eIDAS (FICEP), cittadina tedesca / German citizen",
            typical_level: Level::L2,
            attributes: attrs(&[
                // eIDAS PersonIdentifier: origin country / destination country / identifier.
                ("spidCode", "DE/IT/0f3a9c5e7b2d4816"),
                ("name", "Anna"),
                ("familyName", "Schmidt"),
                ("dateOfBirth", "1975-08-30"),
                ("placeOfBirth", "Berlin"),
                ("gender", "F"),
                ("address", "Unter den Linden 5 10117 Berlin DE"),
            ]),
        },
        TestUser {
            id: "esempio.srl",
            kind: "SPID persona giuridica / legal person",
            typical_level: Level::L2,
            attributes: attrs(&[
                ("spidCode", "DEVI0000000005"),
                ("companyName", "Esempio S.r.l."),
                ("registeredOffice", "Via del Corso 100 00186 Roma RM"),
                ("ivaCode", &format!("VATIT-{company_vat}")),
                ("companyFiscalNumber", &format!("TINIT-{company_vat}")),
                ("digitalAddress", "esempio.srl@pec.example.org"),
                ("email", "info@esempio.example.org"),
            ]),
        },
    ];
    users.extend(acting);
    users
}

/// The user with this id.
pub(crate) fn find(id: &str) -> Option<TestUser> {
    all().into_iter().find(|u| u.id == id)
}

/// A 16-character Italian fiscal code: the 15 given characters and their check letter
/// (odd positions through the conversion table, even positions by value, sum mod 26).
pub(crate) fn fiscal_code(first15: &str) -> String {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let mut sum = 0u32;
    for (i, c) in first15.bytes().enumerate() {
        let v = match c {
            b'0'..=b'9' => usize::from(c - b'0'),
            b'A'..=b'Z' => usize::from(c - b'A'),
            _ => 0,
        };
        // Positions are counted from 1: index 0 is an odd position.
        sum += if i % 2 == 0 {
            ODD.get(v).copied().unwrap_or(0)
        } else {
            v as u32
        };
    }
    let check = char::from(b'A' + (sum % 26) as u8);
    format!("{first15}{check}")
}

/// An 11-digit Italian VAT number (partita IVA): the 10 given digits and their Luhn-style
/// check digit.
pub(crate) fn vat_number(first10: &str) -> String {
    let mut sum = 0u32;
    for (i, c) in first10.bytes().enumerate() {
        let d = u32::from(c.wrapping_sub(b'0') % 10);
        sum += if i % 2 == 0 {
            d
        } else if d * 2 > 9 {
            d * 2 - 9
        } else {
            d * 2
        };
    }
    format!("{first10}{}", (10 - sum % 10) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fiscal_codes_get_their_check_letter() {
        // The SPID fixture's code and two published examples.
        assert_eq!(fiscal_code("RSSMRA80A01H501"), "RSSMRA80A01H501U");
        assert_eq!(fiscal_code("LVLDAA85T50G702"), "LVLDAA85T50G702B");
        assert_eq!(fiscal_code("MRTMTT25D09F205"), "MRTMTT25D09F205Z");
    }

    #[test]
    fn vat_number_check_digit() {
        assert_eq!(vat_number("1234567890"), "12345678903");
        assert_eq!(vat_number("0000000000"), "00000000000");
    }

    #[test]
    fn users_are_unique_and_well_formed() {
        let users = all();
        for (i, u) in users.iter().enumerate() {
            assert!(users[..i].iter().all(|o| o.id != u.id));
            assert!(!u.attributes.is_empty());
            if let Some(cf) = u.attribute("fiscalNumber") {
                let code = cf.strip_prefix("TINIT-").unwrap_or_default();
                assert_eq!(code.len(), 16);
                assert_eq!(fiscal_code(&code[..15]), code);
            }
        }
        let eidas = find("anna.schmidt").map(|u| u.attribute("fiscalNumber").is_none());
        assert_eq!(eidas, Some(true));
    }
}
