//! Our own SAML metadata (the SP's `md:EntityDescriptor`) for the SPID, CIE and eIDAS (FICEP)
//! federations.
//!
//! One configuration ([`SpMetadata`]) yields one signed document per federation profile
//! ([`MetadataProfile`]). The documents cannot be merged: the CIE schema allows only
//! `administrative`/`technical` contacts with `cie:` extensions, while SPID (AgID Avviso n. 29
//! v3) wants an `other` contact with `spid:` extensions (and a `billing` contact for private
//! SPs). Every document has, in schema order:
//!
//! - `ds:Signature` (enveloped, exclusive C14N, the key's default method: RSA-SHA256 for RSA
//!   keys, SHA-256 digest, our certificate in `KeyInfo`);
//! - `md:SPSSODescriptor` with `protocolSupportEnumeration` SAML 2.0,
//!   `AuthnRequestsSigned="true"`, `WantAssertionsSigned="true"`; one `KeyDescriptor
//!   use="signing"` carrying the signing key's certificate (no encryption key: encrypted
//!   assertions are refused by this crate, so none is advertised); the
//!   `SingleLogoutService`s; `NameIDFormat` transient; the `AssertionConsumerService`s
//!   (HTTP-POST, index 0 the only `isDefault="true"`); the `AttributeConsumingService`s;
//! - `md:Organization` (name, display name, URL; `it` always, `en` when configured);
//! - the profile's `md:ContactPerson`s.
//!
//! Pure: no clock, no I/O. Checked against spid-sp-test 1.2.18 (profiles `spid-sp-public`,
//! `spid-sp-private`, `cie-sp-public`/`cie-sp-private`, `ficep-eidas-sp`) by
//! `tests/spid_sp_test_offline.rs`.

use std::fmt;
use std::fmt::Write as _;

use base64::Engine as _;
use saml_xml::escape;
use xmldsig::{DigestMethod, SigningKey, sign_enveloped};

use crate::request::is_valid_id;
use crate::types::{BINDING_POST, BINDING_REDIRECT, NAMEID_TRANSIENT, SAMLP_NS};

/// SAML 2.0 metadata namespace (`md:`).
pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// XML Signature namespace (`ds:`), declared on the root for the `KeyDescriptor`s.
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// SPID metadata extensions (`spid:`), AgID Avviso n. 29 v3.
pub use crate::types::SPID_EXTENSIONS_NS;
/// SPID invoicing extensions (`fpa:`) for the billing contact of private SPs.
pub const SPID_INVOICING_NS: &str = "https://spid.gov.it/invoicing-extensions";
/// CIE metadata extensions (`cie:`).
pub const CIE_EXTENSIONS_NS: &str = "https://www.cartaidentita.interno.gov.it/saml-extensions";
/// `NameFormat` of the requested attributes.
const ATTRNAME_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";

/// The attribute names SPID defines (Regole tecniche, attributes table, plus the domicile
/// attributes of later notices). A `RequestedAttribute` of a SPID or eIDAS document must be one
/// of them.
pub const SPID_ATTRIBUTES: [&str; 23] = [
    "address",
    "companyName",
    "companyFiscalNumber",
    "countyOfBirth",
    "dateOfBirth",
    "digitalAddress",
    "email",
    "expirationDate",
    "familyName",
    "fiscalNumber",
    "gender",
    "idCard",
    "ivaCode",
    "mobilePhone",
    "name",
    "placeOfBirth",
    "registeredOffice",
    "spidCode",
    "domicileStreetAddress",
    "domicilePostalCode",
    "domicileMunicipality",
    "domicileProvince",
    "domicileNation",
];

/// The attributes "Entra con CIE" releases. A CIE document may request only these.
pub const CIE_ATTRIBUTES: [&str; 4] = ["name", "familyName", "dateOfBirth", "fiscalNumber"];

/// `AttributeConsumingService` index of the FICEP "eIDAS Natural Person Minimum Attribute Set".
pub const EIDAS_MINIMUM_SET_INDEX: u16 = 99;
/// `AttributeConsumingService` index of the FICEP "eIDAS Natural Person Full Attribute Set".
pub const EIDAS_FULL_SET_INDEX: u16 = 100;
const EIDAS_MINIMUM_SET_NAME: &str = "eIDAS Natural Person Minimum Attribute Set";
const EIDAS_FULL_SET_NAME: &str = "eIDAS Natural Person Full Attribute Set";
const EIDAS_MINIMUM_SET: [&str; 4] = ["spidCode", "name", "familyName", "dateOfBirth"];
const EIDAS_FULL_SET: [&str; 7] = [
    "spidCode",
    "name",
    "familyName",
    "dateOfBirth",
    "placeOfBirth",
    "address",
    "gender",
];

/// Which federation, and which of its contact profiles, a document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataProfile {
    /// SPID, public administration: `ContactPerson contactType="other"` with `spid:IPACode`
    /// (required), optional `spid:VATNumber`/`spid:FiscalCode`, and an empty `spid:Public`.
    /// Needs [`SpMetadata::sector`] = [`Sector::Public`].
    SpidPublic,
    /// SPID, private operator: `other` contact with `spid:VATNumber` and/or `spid:FiscalCode`
    /// and `spid:Private` (no IPA code), plus a `billing` contact with
    /// `fpa:CessionarioCommittente`. Needs [`Sector::Private`] and [`SpMetadata::billing`].
    SpidPrivate,
    /// "Entra con CIE": one `ContactPerson contactType="administrative"` with `cie:Public` or
    /// `cie:Private` (after [`SpMetadata::sector`]), `cie:IPACode` (public) or
    /// `cie:VATNumber` + `cie:FiscalCode` + `cie:NACE2Code` (private), and
    /// `cie:Municipality` (+ optional `cie:Province`, `cie:Country`) from [`SpMetadata::cie`];
    /// `md:Company` required. Requested attributes limited to [`CIE_ATTRIBUTES`].
    Cie,
    /// eIDAS through the Italian node (FICEP): the SPID document of [`SpMetadata::sector`]
    /// plus the two attribute sets FICEP asks for, at `AttributeConsumingService` indexes
    /// [`EIDAS_MINIMUM_SET_INDEX`] (99) and [`EIDAS_FULL_SET_INDEX`] (100).
    Eidas,
}

impl MetadataProfile {
    /// A short stable name (`spid-public`, `spid-private`, `cie`, `eidas`).
    pub fn name(self) -> &'static str {
        match self {
            Self::SpidPublic => "spid-public",
            Self::SpidPrivate => "spid-private",
            Self::Cie => "cie",
            Self::Eidas => "eidas",
        }
    }
}

impl fmt::Display for MetadataProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the SP is a public administration or a private operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sector {
    /// Public administration (listed on IndicePA with an IPA code).
    Public,
    /// Private operator.
    Private,
}

/// A text in Italian (required by every federation) and optionally English.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Localized {
    /// The `xml:lang="it"` value.
    pub it: String,
    /// The `xml:lang="en"` value, if any.
    pub en: Option<String>,
}

impl Localized {
    /// Italian only.
    pub fn it(it: impl Into<String>) -> Self {
        Localized {
            it: it.into(),
            en: None,
        }
    }

    /// Italian and English.
    pub fn it_en(it: impl Into<String>, en: impl Into<String>) -> Self {
        Localized {
            it: it.into(),
            en: Some(en.into()),
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once(("it", self.it.as_str())).chain(self.en.as_deref().map(|en| ("en", en)))
    }
}

/// The `md:Organization` element. Either all three have an English text or none has
/// (spid-sp-test requires the same languages on the three).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Organization {
    /// `OrganizationName`: the legal name. Also written as the contacts' `md:Company`.
    pub name: Localized,
    /// `OrganizationDisplayName`: the name shown to users.
    pub display_name: Localized,
    /// `OrganizationURL`: the organization's web site.
    pub url: Localized,
}

/// One `AssertionConsumerService` (always the HTTP-POST binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionConsumerService {
    /// The `index` requests name in `AssertionConsumerServiceIndex`. One must be 0: it is
    /// written `isDefault="true"`.
    pub index: u16,
    /// The ACS URL.
    pub url: String,
}

/// The binding of a [`SingleLogoutService`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SloBinding {
    /// `urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST`.
    HttpPost,
    /// `urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect`.
    HttpRedirect,
}

impl SloBinding {
    /// The binding URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::HttpPost => BINDING_POST,
            Self::HttpRedirect => BINDING_REDIRECT,
        }
    }
}

/// One `SingleLogoutService` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleLogoutService {
    /// Its binding.
    pub binding: SloBinding,
    /// Its URL.
    pub url: String,
}

/// One `AttributeConsumingService`: a set of attributes requests select with
/// `AttributeConsumingServiceIndex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeConsumingService {
    /// Its `index`. [`EIDAS_MINIMUM_SET_INDEX`] and [`EIDAS_FULL_SET_INDEX`] are reserved for
    /// the sets the eIDAS profile adds.
    pub index: u16,
    /// `ServiceName` (at most 255 characters: CIE's limit; CIE expects an identifier of the
    /// service here, such as a `urn:uuid:`).
    pub service_name: Localized,
    /// The requested attribute names (SPID names, e.g. `fiscalNumber`), without duplicates,
    /// written as `RequestedAttribute Name="…"` with the basic `NameFormat`.
    pub attributes: Vec<String>,
}

/// The e-mail and telephone of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// `EmailAddress` (required).
    pub email: String,
    /// `TelephoneNumber`: international format without spaces, e.g. `+390612345678`.
    pub phone: Option<String>,
}

/// A VAT identifier split as the invoicing schema wants it (`fpa:IdFiscaleIVA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatId {
    /// `IdPaese`: ISO 3166-1 alpha-2 country code, e.g. `IT`.
    pub country: String,
    /// `IdCodice`: the number without the country prefix.
    pub code: String,
}

/// A postal address (`fpa:Sede`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `Indirizzo`: street (at most 60 Latin-1 characters).
    pub street: String,
    /// `NumeroCivico`: house number, if separate.
    pub number: Option<String>,
    /// `CAP`: five-digit postal code.
    pub postal_code: String,
    /// `Comune`: municipality (at most 60 Latin-1 characters).
    pub municipality: String,
    /// `Provincia`: two-letter province code, e.g. `RM`.
    pub province: Option<String>,
    /// `Nazione`: ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// The `billing` contact of a private SPID SP: `fpa:CessionarioCommittente`, the party AgID
/// invoices (Avviso n. 29 v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingContact {
    /// E-mail and telephone of the billing contact.
    pub contact: Contact,
    /// `Denominazione` (and the contact's `md:Company`): at most 80 Latin-1 characters.
    pub name: String,
    /// `IdFiscaleIVA`; at least one of this and `fiscal_code` is required.
    pub vat: Option<VatId>,
    /// `CodiceFiscale`: 11 to 16 characters `A-Z0-9`.
    pub fiscal_code: Option<String>,
    /// `Sede`.
    pub address: Address,
}

/// The CIE-only contact data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CieContact {
    /// `cie:Municipality`: the cadastral code (codice catastale) of the municipality of the
    /// registered office, e.g. `H501` for Rome. Required.
    pub municipality: String,
    /// `cie:Province`: two-letter province code.
    pub province: Option<String>,
    /// `cie:Country`: ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// `cie:NACE2Code`: the NACE rev. 2 activity code, required for private SPs.
    pub nace2_code: Option<String>,
}

/// Everything our metadata says about us. One value serves every profile; each profile reads
/// the fields it needs and [`sp_metadata`] rejects a configuration missing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    /// Our entityID (the `Issuer` of our requests).
    pub entity_id: String,
    /// The AssertionConsumerServices; one has index 0 (the default).
    pub assertion_consumer_services: Vec<AssertionConsumerService>,
    /// The SingleLogoutService endpoints (at least one).
    pub single_logout_services: Vec<SingleLogoutService>,
    /// The `md:Organization`.
    pub organization: Organization,
    /// Public administration or private operator.
    pub sector: Sector,
    /// IPA code (IndicePA), required for public SPs, never written for private ones.
    pub ipa_code: Option<String>,
    /// VAT number with its ISO 3166 prefix, e.g. `IT12345678901`.
    pub vat_number: Option<String>,
    /// Fiscal code (codice fiscale) of the organization.
    pub fiscal_code: Option<String>,
    /// The main contact (`other` for SPID, `administrative` for CIE).
    pub contact: Contact,
    /// The billing contact, required by [`MetadataProfile::SpidPrivate`] (and by `Eidas` for
    /// a private SP).
    pub billing: Option<BillingContact>,
    /// CIE contact data, required by [`MetadataProfile::Cie`].
    pub cie: Option<CieContact>,
    /// The AttributeConsumingServices of the SPID and eIDAS documents (at least one).
    pub attribute_consuming_services: Vec<AttributeConsumingService>,
    /// The AttributeConsumingServices of the CIE document; `None` uses
    /// `attribute_consuming_services` (which must then request only [`CIE_ATTRIBUTES`]).
    pub cie_attribute_consuming_services: Option<Vec<AttributeConsumingService>>,
}

/// Why metadata could not be produced. Every variant is a configuration problem (or a signing
/// failure), never attacker input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The document ID is not a valid `xs:ID` (same rule as request IDs).
    InvalidId,
    /// A required value is missing or empty.
    Missing {
        /// Which value (a field path such as `organization.url.it`).
        field: &'static str,
    },
    /// A value does not have the form the federation requires (e-mail, telephone, VAT
    /// number, postal code, …).
    Invalid {
        /// Which value.
        field: &'static str,
    },
    /// The profile is for the other sector (e.g. [`MetadataProfile::SpidPublic`] with a
    /// private SP).
    SectorMismatch {
        /// The profile asked for.
        profile: MetadataProfile,
    },
    /// No AssertionConsumerService has index 0.
    NoDefaultAcs,
    /// Two AssertionConsumerServices or two AttributeConsumingServices share an index, or an
    /// AttributeConsumingService uses an index the eIDAS profile reserves (99, 100).
    DuplicateIndex {
        /// `AssertionConsumerService` or `AttributeConsumingService`.
        element: &'static str,
        /// The index.
        index: u16,
    },
    /// A requested attribute is not one the profile's federation knows, or is repeated.
    Attribute {
        /// The profile.
        profile: MetadataProfile,
        /// The attribute name.
        name: String,
    },
    /// The organization's three elements do not have the same languages.
    LanguageMismatch,
    /// Signing failed.
    Signing(xmldsig::Error),
}

impl MetadataError {
    /// A short, stable identifier for logs and metric labels. The set is closed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId => "metadata_invalid_id",
            Self::Missing { .. } => "metadata_missing",
            Self::Invalid { .. } => "metadata_invalid",
            Self::SectorMismatch { .. } => "metadata_sector_mismatch",
            Self::NoDefaultAcs => "metadata_no_default_acs",
            Self::DuplicateIndex { .. } => "metadata_duplicate_index",
            Self::Attribute { .. } => "metadata_attribute",
            Self::LanguageMismatch => "metadata_language_mismatch",
            Self::Signing(_) => "metadata_signing",
        }
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidId => f.write_str("metadata ID is not a valid xs:ID"),
            Self::Missing { field } => write!(f, "{field} is required"),
            Self::Invalid { field } => write!(f, "{field} has an invalid value"),
            Self::SectorMismatch { profile } => {
                write!(f, "profile {profile} does not match the configured sector")
            }
            Self::NoDefaultAcs => f.write_str("no AssertionConsumerService with index 0"),
            Self::DuplicateIndex { element, index } => {
                write!(f, "{element} index {index} is used twice or reserved")
            }
            Self::Attribute { profile, name } => {
                write!(
                    f,
                    "attribute {name:?} is unknown or repeated for profile {profile}"
                )
            }
            Self::LanguageMismatch => f.write_str(
                "OrganizationName, OrganizationDisplayName and OrganizationURL must have the \
                 same languages",
            ),
            Self::Signing(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl std::error::Error for MetadataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Signing(e) => Some(e),
            _ => None,
        }
    }
}

/// Builds and signs our metadata for `profile`.
///
/// `id` becomes the `EntityDescriptor`'s `ID` (the signature's reference); like request IDs it
/// must be an NCName of ASCII letters, digits, `_`, `-`, `.`. The signature uses `key`'s
/// default method (RSA-SHA256 for RSA keys) and SHA-256, and `key`'s certificate is also the
/// one published in `KeyDescriptor use="signing"`, so requests signed with `key` verify
/// against this metadata. The result starts with an XML declaration.
pub fn sp_metadata(
    cfg: &SpMetadata,
    profile: MetadataProfile,
    key: &SigningKey,
    id: &str,
) -> Result<String, MetadataError> {
    if !is_valid_id(id) {
        return Err(MetadataError::InvalidId);
    }
    validate_common(cfg)?;
    let services = match profile {
        MetadataProfile::Cie => cfg
            .cie_attribute_consuming_services
            .as_ref()
            .unwrap_or(&cfg.attribute_consuming_services),
        _ => &cfg.attribute_consuming_services,
    };
    validate_services(services, profile)?;
    let contacts = match profile {
        MetadataProfile::SpidPublic | MetadataProfile::SpidPrivate => {
            let expected = if profile == MetadataProfile::SpidPublic {
                Sector::Public
            } else {
                Sector::Private
            };
            if cfg.sector != expected {
                return Err(MetadataError::SectorMismatch { profile });
            }
            spid_contacts(cfg)?
        }
        MetadataProfile::Eidas => spid_contacts(cfg)?,
        MetadataProfile::Cie => cie_contacts(cfg)?,
    };

    let uses_spid_ns = profile != MetadataProfile::Cie;
    let mut xml = String::with_capacity(8192);
    let _ = write!(
        xml,
        "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DS_NS}\""
    );
    if uses_spid_ns {
        let _ = write!(xml, " xmlns:spid=\"{SPID_EXTENSIONS_NS}\"");
        if cfg.sector == Sector::Private {
            let _ = write!(xml, " xmlns:fpa=\"{SPID_INVOICING_NS}\"");
        }
    } else {
        let _ = write!(xml, " xmlns:cie=\"{CIE_EXTENSIONS_NS}\"");
    }
    let _ = writeln!(xml, " entityID=\"{}\" ID=\"{id}\">", escape(&cfg.entity_id));

    // SPSSODescriptor.
    let certificate = base64::engine::general_purpose::STANDARD.encode(key.certificate_der());
    let _ = write!(
        xml,
        "  <md:SPSSODescriptor protocolSupportEnumeration=\"{SAMLP_NS}\" \
         AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\">\n\
         \x20   <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>\
         <ds:X509Certificate>{certificate}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n"
    );
    for slo in &cfg.single_logout_services {
        let _ = writeln!(
            xml,
            "    <md:SingleLogoutService Binding=\"{}\" Location=\"{}\"/>",
            slo.binding.uri(),
            escape(&slo.url)
        );
    }
    let _ = writeln!(
        xml,
        "    <md:NameIDFormat>{NAMEID_TRANSIENT}</md:NameIDFormat>"
    );
    let mut acs: Vec<&AssertionConsumerService> = cfg.assertion_consumer_services.iter().collect();
    acs.sort_by_key(|a| a.index);
    for a in acs {
        let default = if a.index == 0 { "true" } else { "false" };
        let _ = writeln!(
            xml,
            "    <md:AssertionConsumerService Binding=\"{BINDING_POST}\" Location=\"{}\" \
             index=\"{}\" isDefault=\"{default}\"/>",
            escape(&a.url),
            a.index
        );
    }
    let mut sets: Vec<AttributeSet<'_>> = services
        .iter()
        .map(|s| AttributeSet {
            index: s.index,
            names: s.service_name.pairs().collect(),
            attributes: s.attributes.iter().map(String::as_str).collect(),
        })
        .collect();
    if profile == MetadataProfile::Eidas {
        sets.push(AttributeSet {
            index: EIDAS_MINIMUM_SET_INDEX,
            names: vec![("it", EIDAS_MINIMUM_SET_NAME)],
            attributes: EIDAS_MINIMUM_SET.to_vec(),
        });
        sets.push(AttributeSet {
            index: EIDAS_FULL_SET_INDEX,
            names: vec![("it", EIDAS_FULL_SET_NAME)],
            attributes: EIDAS_FULL_SET.to_vec(),
        });
    }
    sets.sort_by_key(|s| s.index);
    for set in sets {
        let _ = writeln!(
            xml,
            "    <md:AttributeConsumingService index=\"{}\">",
            set.index
        );
        for (lang, name) in set.names {
            let _ = writeln!(
                xml,
                "      <md:ServiceName xml:lang=\"{lang}\">{}</md:ServiceName>",
                escape(name)
            );
        }
        for attribute in set.attributes {
            let _ = writeln!(
                xml,
                "      <md:RequestedAttribute Name=\"{}\" NameFormat=\"{ATTRNAME_BASIC}\"/>",
                escape(attribute)
            );
        }
        xml.push_str("    </md:AttributeConsumingService>\n");
    }
    xml.push_str("  </md:SPSSODescriptor>\n");

    // Organization.
    xml.push_str("  <md:Organization>\n");
    let org = &cfg.organization;
    for (element, text) in [
        ("OrganizationName", &org.name),
        ("OrganizationDisplayName", &org.display_name),
        ("OrganizationURL", &org.url),
    ] {
        for (lang, value) in text.pairs() {
            let _ = writeln!(
                xml,
                "    <md:{element} xml:lang=\"{lang}\">{}</md:{element}>",
                escape(value)
            );
        }
    }
    xml.push_str("  </md:Organization>\n");
    xml.push_str(&contacts);
    xml.push_str("</md:EntityDescriptor>\n");

    let signed = sign_enveloped(&xml, id, key, key.default_method(), DigestMethod::Sha256)
        .map_err(MetadataError::Signing)?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{signed}"
    ))
}

/// One `AttributeConsumingService` as written: configured or added by the eIDAS profile.
struct AttributeSet<'a> {
    index: u16,
    names: Vec<(&'static str, &'a str)>,
    attributes: Vec<&'a str>,
}

/// The SPID contacts: `other` (both sectors) and `billing` (private).
fn spid_contacts(cfg: &SpMetadata) -> Result<String, MetadataError> {
    let mut out = String::with_capacity(1024);
    let mut ext = String::new();
    match cfg.sector {
        Sector::Public => {
            let ipa = required(cfg.ipa_code.as_deref(), "ipa_code")?;
            let _ = write!(ext, "<spid:IPACode>{}</spid:IPACode>", escape(ipa));
        }
        Sector::Private => {
            if cfg.vat_number.is_none() && cfg.fiscal_code.is_none() {
                return Err(MetadataError::Missing {
                    field: "vat_number or fiscal_code",
                });
            }
        }
    }
    if let Some(vat) = &cfg.vat_number {
        if !is_prefixed_vat(vat) {
            return Err(MetadataError::Invalid {
                field: "vat_number",
            });
        }
        let _ = write!(ext, "<spid:VATNumber>{}</spid:VATNumber>", escape(vat));
    }
    if let Some(fc) = &cfg.fiscal_code {
        let fc = required(Some(fc), "fiscal_code")?;
        let _ = write!(ext, "<spid:FiscalCode>{}</spid:FiscalCode>", escape(fc));
    }
    ext.push_str(match cfg.sector {
        Sector::Public => "<spid:Public/>",
        Sector::Private => "<spid:Private/>",
    });
    push_contact(
        &mut out,
        "other",
        &ext,
        &cfg.organization.name.it,
        &cfg.contact,
    )?;

    if cfg.sector == Sector::Private {
        let billing = cfg
            .billing
            .as_ref()
            .ok_or(MetadataError::Missing { field: "billing" })?;
        let ext = cessionario_committente(billing)?;
        push_contact(&mut out, "billing", &ext, &billing.name, &billing.contact)?;
    }
    Ok(out)
}

/// The CIE contact: one `administrative` contact with `cie:` extensions.
fn cie_contacts(cfg: &SpMetadata) -> Result<String, MetadataError> {
    let cie = cfg
        .cie
        .as_ref()
        .ok_or(MetadataError::Missing { field: "cie" })?;
    let mut ext = String::new();
    match cfg.sector {
        Sector::Public => {
            let ipa = required(cfg.ipa_code.as_deref(), "ipa_code")?;
            let _ = write!(
                ext,
                "<cie:Public/><cie:IPACode>{}</cie:IPACode>",
                escape(ipa)
            );
        }
        Sector::Private => {
            let vat = required(cfg.vat_number.as_deref(), "vat_number")?;
            if !is_prefixed_vat(vat) {
                return Err(MetadataError::Invalid {
                    field: "vat_number",
                });
            }
            let fc = required(cfg.fiscal_code.as_deref(), "fiscal_code")?;
            let nace = required(cie.nace2_code.as_deref(), "cie.nace2_code")?;
            let _ = write!(
                ext,
                "<cie:Private/><cie:VATNumber>{}</cie:VATNumber>\
                 <cie:FiscalCode>{}</cie:FiscalCode><cie:NACE2Code>{}</cie:NACE2Code>",
                escape(vat),
                escape(fc),
                escape(nace)
            );
        }
    }
    let municipality = required(Some(&cie.municipality), "cie.municipality")?;
    let _ = write!(
        ext,
        "<cie:Municipality>{}</cie:Municipality>",
        escape(municipality)
    );
    if let Some(p) = &cie.province {
        if !is_upper_alpha(p, 2) {
            return Err(MetadataError::Invalid {
                field: "cie.province",
            });
        }
        let _ = write!(ext, "<cie:Province>{p}</cie:Province>");
    }
    if let Some(c) = &cie.country {
        if !is_upper_alpha(c, 2) {
            return Err(MetadataError::Invalid {
                field: "cie.country",
            });
        }
        let _ = write!(ext, "<cie:Country>{c}</cie:Country>");
    }
    let mut out = String::with_capacity(512);
    push_contact(
        &mut out,
        "administrative",
        &ext,
        &cfg.organization.name.it,
        &cfg.contact,
    )?;
    Ok(out)
}

/// `fpa:CessionarioCommittente` (spid-invoicing.xsd), validated against that schema's
/// patterns.
fn cessionario_committente(b: &BillingContact) -> Result<String, MetadataError> {
    let name = required(Some(&b.name), "billing.name")?;
    if !is_latin1(name, 80) {
        return Err(MetadataError::Invalid {
            field: "billing.name",
        });
    }
    if b.vat.is_none() && b.fiscal_code.is_none() {
        return Err(MetadataError::Missing {
            field: "billing.vat or billing.fiscal_code",
        });
    }
    let mut out = String::from("<fpa:CessionarioCommittente><fpa:DatiAnagrafici>");
    if let Some(vat) = &b.vat {
        if !is_upper_alpha(&vat.country, 2) {
            return Err(MetadataError::Invalid {
                field: "billing.vat.country",
            });
        }
        if vat.code.is_empty() || vat.code.len() > 28 {
            return Err(MetadataError::Invalid {
                field: "billing.vat.code",
            });
        }
        let _ = write!(
            out,
            "<fpa:IdFiscaleIVA><fpa:IdPaese>{}</fpa:IdPaese><fpa:IdCodice>{}</fpa:IdCodice>\
             </fpa:IdFiscaleIVA>",
            vat.country,
            escape(&vat.code)
        );
    }
    if let Some(fc) = &b.fiscal_code {
        let ok = (11..=16).contains(&fc.len())
            && fc
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            return Err(MetadataError::Invalid {
                field: "billing.fiscal_code",
            });
        }
        let _ = write!(out, "<fpa:CodiceFiscale>{fc}</fpa:CodiceFiscale>");
    }
    let _ = write!(
        out,
        "<fpa:Anagrafica><fpa:Denominazione>{}</fpa:Denominazione></fpa:Anagrafica>\
         </fpa:DatiAnagrafici><fpa:Sede>",
        escape(name)
    );
    let a = &b.address;
    if !is_latin1(&a.street, 60) {
        return Err(MetadataError::Invalid {
            field: "billing.address.street",
        });
    }
    let _ = write!(out, "<fpa:Indirizzo>{}</fpa:Indirizzo>", escape(&a.street));
    if let Some(n) = &a.number {
        if n.is_empty() || n.len() > 8 || !n.is_ascii() {
            return Err(MetadataError::Invalid {
                field: "billing.address.number",
            });
        }
        let _ = write!(out, "<fpa:NumeroCivico>{}</fpa:NumeroCivico>", escape(n));
    }
    if !(a.postal_code.len() == 5 && a.postal_code.bytes().all(|c| c.is_ascii_digit())) {
        return Err(MetadataError::Invalid {
            field: "billing.address.postal_code",
        });
    }
    if !is_latin1(&a.municipality, 60) {
        return Err(MetadataError::Invalid {
            field: "billing.address.municipality",
        });
    }
    let _ = write!(
        out,
        "<fpa:CAP>{}</fpa:CAP><fpa:Comune>{}</fpa:Comune>",
        a.postal_code,
        escape(&a.municipality)
    );
    if let Some(p) = &a.province {
        if !is_upper_alpha(p, 2) {
            return Err(MetadataError::Invalid {
                field: "billing.address.province",
            });
        }
        let _ = write!(out, "<fpa:Provincia>{p}</fpa:Provincia>");
    }
    if !is_upper_alpha(&a.country, 2) {
        return Err(MetadataError::Invalid {
            field: "billing.address.country",
        });
    }
    let _ = write!(
        out,
        "<fpa:Nazione>{}</fpa:Nazione></fpa:Sede></fpa:CessionarioCommittente>",
        a.country
    );
    Ok(out)
}

/// One `md:ContactPerson` in the order every schema wants: Extensions, Company,
/// EmailAddress, TelephoneNumber. No GivenName/SurName (the Avviso 29 schema has none).
fn push_contact(
    out: &mut String,
    contact_type: &str,
    extensions: &str,
    company: &str,
    contact: &Contact,
) -> Result<(), MetadataError> {
    let billing = contact_type == "billing";
    if !is_valid_email(&contact.email) {
        let field = if billing {
            "billing.contact.email"
        } else {
            "contact.email"
        };
        return Err(MetadataError::Invalid { field });
    }
    let _ = write!(
        out,
        "  <md:ContactPerson contactType=\"{contact_type}\">\n\
         \x20   <md:Extensions>{extensions}</md:Extensions>\n\
         \x20   <md:Company>{}</md:Company>\n\
         \x20   <md:EmailAddress>{}</md:EmailAddress>\n",
        escape(company),
        escape(&contact.email)
    );
    if let Some(phone) = &contact.phone {
        if !is_valid_phone(phone) {
            let field = if billing {
                "billing.contact.phone"
            } else {
                "contact.phone"
            };
            return Err(MetadataError::Invalid { field });
        }
        let _ = writeln!(out, "    <md:TelephoneNumber>{phone}</md:TelephoneNumber>");
    }
    out.push_str("  </md:ContactPerson>\n");
    Ok(())
}

fn validate_common(cfg: &SpMetadata) -> Result<(), MetadataError> {
    required(Some(&cfg.entity_id), "entity_id")?;
    if cfg.assertion_consumer_services.is_empty() {
        return Err(MetadataError::Missing {
            field: "assertion_consumer_services",
        });
    }
    let mut seen = Vec::new();
    for acs in &cfg.assertion_consumer_services {
        required(Some(&acs.url), "assertion_consumer_services.url")?;
        if seen.contains(&acs.index) {
            return Err(MetadataError::DuplicateIndex {
                element: "AssertionConsumerService",
                index: acs.index,
            });
        }
        seen.push(acs.index);
    }
    if !seen.contains(&0) {
        return Err(MetadataError::NoDefaultAcs);
    }
    if cfg.single_logout_services.is_empty() {
        return Err(MetadataError::Missing {
            field: "single_logout_services",
        });
    }
    for slo in &cfg.single_logout_services {
        required(Some(&slo.url), "single_logout_services.url")?;
    }
    let org = &cfg.organization;
    required(Some(&org.name.it), "organization.name.it")?;
    required(Some(&org.display_name.it), "organization.display_name.it")?;
    required(Some(&org.url.it), "organization.url.it")?;
    let with_en = [&org.name, &org.display_name, &org.url]
        .iter()
        .filter(|l| l.en.as_deref().is_some_and(|s| !s.is_empty()))
        .count();
    let any_en = [&org.name, &org.display_name, &org.url]
        .iter()
        .filter(|l| l.en.is_some())
        .count();
    if any_en != 0 && (with_en != 3 || any_en != 3) {
        return Err(MetadataError::LanguageMismatch);
    }
    Ok(())
}

fn validate_services(
    services: &[AttributeConsumingService],
    profile: MetadataProfile,
) -> Result<(), MetadataError> {
    if services.is_empty() {
        return Err(MetadataError::Missing {
            field: "attribute_consuming_services",
        });
    }
    let allowed: &[&str] = if profile == MetadataProfile::Cie {
        &CIE_ATTRIBUTES
    } else {
        &SPID_ATTRIBUTES
    };
    let mut seen = Vec::new();
    for s in services {
        let reserved = profile == MetadataProfile::Eidas
            && (s.index == EIDAS_MINIMUM_SET_INDEX || s.index == EIDAS_FULL_SET_INDEX);
        if seen.contains(&s.index) || reserved {
            return Err(MetadataError::DuplicateIndex {
                element: "AttributeConsumingService",
                index: s.index,
            });
        }
        seen.push(s.index);
        let name_ok = !s.service_name.it.is_empty()
            && s.service_name.it.chars().count() <= 255
            && s.service_name
                .en
                .as_deref()
                .is_none_or(|en| !en.is_empty() && en.chars().count() <= 255);
        if !name_ok {
            return Err(MetadataError::Invalid {
                field: "attribute_consuming_services.service_name",
            });
        }
        if s.attributes.is_empty() {
            return Err(MetadataError::Missing {
                field: "attribute_consuming_services.attributes",
            });
        }
        for (i, a) in s.attributes.iter().enumerate() {
            if !allowed.contains(&a.as_str()) || s.attributes[..i].contains(a) {
                return Err(MetadataError::Attribute {
                    profile,
                    name: a.clone(),
                });
            }
        }
    }
    Ok(())
}

fn required<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, MetadataError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(MetadataError::Missing { field }),
    }
}

/// `local@domain.tld`, the shape spid-sp-test's regular expression accepts: local part and
/// domain of ASCII letters, digits, `_`, `-`, `.`; a top-level label of 2 to 8 letters/digits.
fn is_valid_email(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    !local.is_empty()
        && local.chars().all(word)
        && !host.is_empty()
        && host.chars().all(word)
        && (2..=8).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `+` and 6 to 15 digits (E.164, no spaces).
fn is_valid_phone(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()))
}

/// A VAT number with its ISO 3166 alpha-2 prefix: `IT12345678901`.
fn is_prefixed_vat(s: &str) -> bool {
    s.len() > 2
        && s.len() <= 30
        && s.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_upper_alpha(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// Non-empty, at most `max` characters, all in Basic Latin or Latin-1 Supplement (no
/// control characters): the invoicing schema's string types.
fn is_latin1(s: &str, max: usize) -> bool {
    let n = s.chars().count();
    n > 0 && n <= max && s.chars().all(|c| u32::from(c) <= 0xFF && !c.is_control())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn email_phone_vat_rules() {
        assert!(is_valid_email("spid.tech@comune.example.it"));
        assert!(!is_valid_email("no-at.example.it"));
        assert!(!is_valid_email("a b@example.it"));
        assert!(!is_valid_email("a@example"));
        assert!(is_valid_phone("+390612345678"));
        assert!(!is_valid_phone("+39 06 12345678"));
        assert!(!is_valid_phone("0612345678"));
        assert!(is_prefixed_vat("IT12345678901"));
        assert!(!is_prefixed_vat("12345678901"));
        assert!(!is_prefixed_vat("it12345678901"));
        assert!(is_latin1("Comune di Perù", 80));
        assert!(!is_latin1("Città €", 80));
    }

    #[test]
    fn ids_follow_the_request_rule() {
        assert!(is_valid_id("_md-1.a"));
        assert!(!is_valid_id("1abc"));
        assert!(!is_valid_id("a\"b"));
        assert!(!is_valid_id(""));
    }
}
