//! Canonical attribute names (SPID's vocabulary, which every source is mapped onto).

/// Fiscal code, optionally `TINIT-` prefixed (SPID, CIE, CNS, legacy).
pub const FISCAL_NUMBER: &str = "fiscalNumber";
/// eIDAS unique identifier (FICEP).
pub const PERSON_IDENTIFIER: &str = "PersonIdentifier";
/// Given name.
pub const NAME: &str = "name";
/// Family name.
pub const FAMILY_NAME: &str = "familyName";
/// Date of birth, `YYYY-MM-DD`.
pub const DATE_OF_BIRTH: &str = "dateOfBirth";
/// E-mail address.
pub const EMAIL: &str = "email";
/// Mobile phone number.
pub const MOBILE_PHONE: &str = "mobilePhone";
/// Postal address, one line.
pub const ADDRESS: &str = "address";
/// Legal person: company name.
pub const COMPANY_NAME: &str = "companyName";
/// Legal person: VAT number (SPID sends it as `VATIT-…`).
pub const IVA_CODE: &str = "ivaCode";
/// Legal person: company fiscal number.
pub const COMPANY_FISCAL_NUMBER: &str = "companyFiscalNumber";
/// SPID purpose of the authentication (`spid:Purpose` extension, e.g. `PG`, `LP`).
pub const PURPOSE: &str = "spid:Purpose";
