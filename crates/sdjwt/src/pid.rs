//! The Person Identification Data view: the PID attributes a login needs, typed.
//!
//! Names follow the SD-JWT VC encoding of the PID (EUDI ARF PID Rulebook and the IT-Wallet
//! technical rules): `given_name`, `family_name`, `birth_date` (`birthdate` in some
//! profiles: both are read, and two different values are refused as ambiguous),
//! `tax_id_code` (the Italian tax code, `TINIT-...`), `personal_administrative_number`,
//! `birth_place` / `place_of_birth`, `nationalities`.

use serde_json::{Map, Value};

use crate::Error;

/// Longest accepted attribute value, in bytes: names and codes are short, and a longer
/// value only travels into headers and logs downstream.
const MAX_VALUE: usize = 256;

/// The PID attributes, as disclosed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pid {
    /// `given_name`.
    pub given_name: String,
    /// `family_name`.
    pub family_name: String,
    /// `birth_date` (ISO 8601 `YYYY-MM-DD`).
    pub birth_date: String,
    /// `tax_id_code` (Italian PID: `TINIT-` and the codice fiscale), if disclosed.
    pub tax_id_code: Option<String>,
    /// `personal_administrative_number` (EUDI PID), if disclosed.
    pub personal_administrative_number: Option<String>,
    /// Place of birth as text (`birth_place`, or `place_of_birth.locality`), if disclosed.
    pub birth_place: Option<String>,
    /// `nationalities` (ISO 3166-1 alpha-2 codes), if disclosed.
    pub nationalities: Vec<String>,
}

fn text(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<String>, Error> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_VALUE => {
            if s.chars().any(char::is_control) {
                return Err(Error::Pid {
                    claim,
                    reason: "control character",
                });
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(Error::Pid {
            claim,
            reason: "not a non-empty string of at most 256 bytes",
        }),
    }
}

fn required(claims: &Map<String, Value>, claim: &'static str) -> Result<String, Error> {
    text(claims, claim)?.ok_or(Error::Pid {
        claim,
        reason: "missing",
    })
}

/// `YYYY-MM-DD` with plausible month and day (the calendar is the issuer's business).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
        return false;
    }
    if !digits(8..10) {
        return false;
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    let day = (b[8] - b'0') * 10 + (b[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

impl Pid {
    /// Reads the PID attributes from verified, disclosed claims. `given_name`,
    /// `family_name` and the birth date are required; one of `tax_id_code` and
    /// `personal_administrative_number` must be present (a principal needs an identifier).
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Pid, Error> {
        let birth_date = match (text(claims, "birth_date")?, text(claims, "birthdate")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Pid {
                    claim: "birth_date",
                    reason: "birth_date and birthdate differ",
                });
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(Error::Pid {
                    claim: "birth_date",
                    reason: "missing",
                });
            }
        };
        if !is_date(&birth_date) {
            return Err(Error::Pid {
                claim: "birth_date",
                reason: "not YYYY-MM-DD",
            });
        }
        let tax_id_code = text(claims, "tax_id_code")?;
        let personal_administrative_number = text(claims, "personal_administrative_number")?;
        if tax_id_code.is_none() && personal_administrative_number.is_none() {
            return Err(Error::Pid {
                claim: "tax_id_code",
                reason: "neither tax_id_code nor personal_administrative_number disclosed",
            });
        }
        let birth_place = match text(claims, "birth_place")? {
            Some(p) => Some(p),
            None => match claims.get("place_of_birth") {
                Some(Value::Object(o)) => text(o, "locality")?,
                None => None,
                Some(_) => {
                    return Err(Error::Pid {
                        claim: "place_of_birth",
                        reason: "not an object",
                    });
                }
            },
        };
        let nationalities = match claims.get("nationalities") {
            None => Vec::new(),
            Some(Value::Array(a)) if a.len() <= 16 => a
                .iter()
                .map(|n| match n {
                    Value::String(s)
                        if s.len() == 2 && s.bytes().all(|c| c.is_ascii_uppercase()) =>
                    {
                        Ok(s.clone())
                    }
                    _ => Err(Error::Pid {
                        claim: "nationalities",
                        reason: "not an ISO 3166-1 alpha-2 code",
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Error::Pid {
                    claim: "nationalities",
                    reason: "not an array of at most 16 codes",
                });
            }
        };
        Ok(Pid {
            given_name: required(claims, "given_name")?,
            family_name: required(claims, "family_name")?,
            birth_date,
            tax_id_code,
            personal_administrative_number,
            birth_place,
            nationalities,
        })
    }
}
