//! The XML this IdP signs: SPID Responses (success and user cancellation) and its metadata.

pub(crate) use saml_xml::escape;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use saml::{
    BINDING_POST, BINDING_REDIRECT, CM_BEARER, Level, NAMEID_ENTITY, NAMEID_TRANSIENT, SAML_NS,
    SAMLP_NS, STATUS_SUCCESS,
};
use xmldsig::{DigestMethod, SigningKey, sign_enveloped};

use crate::request::IncomingRequest;
use crate::sp::MD_NS;
use crate::users::TestUser;

/// How long an Assertion and its bearer confirmation stay valid.
pub(crate) const VALIDITY: Duration = Duration::from_secs(5 * 60);
/// `StatusCode` of a failure on the IdP side.
pub(crate) const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
/// Second-level `StatusCode` of a failed authentication.
pub(crate) const STATUS_AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";
/// SPID anomaly 25: the user cancelled.
pub(crate) const CANCELLED_MESSAGE: &str = "ErrorCode nr25";
/// The attributes the IdP metadata advertises (every one some test user has).
const ADVERTISED: [&str; 17] = [
    "spidCode",
    "name",
    "familyName",
    "fiscalNumber",
    "email",
    "mobilePhone",
    "dateOfBirth",
    "placeOfBirth",
    "countyOfBirth",
    "gender",
    "address",
    "digitalAddress",
    "companyName",
    "registeredOffice",
    "ivaCode",
    "companyFiscalNumber",
    "expirationDate",
];
const XS_NS: &str = "http://www.w3.org/2001/XMLSchema";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const ATTRNAME_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";

/// This IdP: its names and its key.
pub(crate) struct Idp {
    /// The entityID (`Issuer` of everything it signs).
    pub(crate) entity_id: String,
    /// The `SingleSignOnService` location (both bindings).
    pub(crate) sso_url: String,
    /// The `SingleLogoutService` location (both bindings).
    pub(crate) slo_url: String,
    /// The signing key and certificate.
    pub(crate) key: SigningKey,
    /// Randomness for identifiers.
    pub(crate) rng: SystemRandom,
}

/// A SAML identifier: `_` and 40 random hex digits.
pub(crate) fn random_id(rng: &SystemRandom) -> Result<String, String> {
    let mut bytes = [0u8; 20];
    rng.fill(&mut bytes).map_err(|_| "no randomness")?;
    let mut id = String::with_capacity(41);
    id.push('_');
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    Ok(id)
}

/// A successful SPID Response for `user` at `level`: the Assertion is signed, then the
/// Response around it. With `released` set, only those attribute names are included (the
/// SP's AttributeConsumingService); an empty selection omits the AttributeStatement.
pub(crate) fn success(
    idp: &Idp,
    request: &IncomingRequest,
    user: &TestUser,
    level: Level,
    released: Option<&[String]>,
    subject: (&str, &str),
    now: SystemTime,
) -> Result<String, String> {
    let response_id = random_id(&idp.rng)?;
    let assertion_id = random_id(&idp.rng)?;
    let (name_id, session_index) = subject;
    let issued = instant(now)?;
    let until = instant(now + VALIDITY)?;
    let key = &idp.key;
    let idp = escape(&idp.entity_id);
    let acs = escape(&request.acs_url);
    let in_response_to = escape(&request.id);

    let mut xml = String::with_capacity(8192);
    response_open(&mut xml, &response_id, &issued, &acs, &in_response_to, &idp);
    let _ = write!(
        xml,
        "<samlp:Status><samlp:StatusCode Value=\"{STATUS_SUCCESS}\"/></samlp:Status>\
         <saml:Assertion ID=\"{assertion_id}\" Version=\"2.0\" IssueInstant=\"{issued}\">\
         <saml:Issuer Format=\"{NAMEID_ENTITY}\">{idp}</saml:Issuer>\
         <saml:Subject>\
         <saml:NameID Format=\"{NAMEID_TRANSIENT}\" NameQualifier=\"{idp}\">{name_id}</saml:NameID>\
         <saml:SubjectConfirmation Method=\"{CM_BEARER}\">\
         <saml:SubjectConfirmationData Recipient=\"{acs}\" NotOnOrAfter=\"{until}\" \
         InResponseTo=\"{in_response_to}\"/>\
         </saml:SubjectConfirmation>\
         </saml:Subject>\
         <saml:Conditions NotBefore=\"{issued}\" NotOnOrAfter=\"{until}\">\
         <saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>\
         </saml:Conditions>\
         <saml:AuthnStatement AuthnInstant=\"{issued}\" SessionIndex=\"{session_index}\">\
         <saml:AuthnContext><saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>\
         </saml:AuthnContext>\
         </saml:AuthnStatement>",
        escape(&request.issuer),
        level.uri(),
    );
    let attributes: Vec<&(&str, String)> = user
        .attributes
        .iter()
        // `spid:Purpose` says what kind of identity this is (AgID Avviso SPID n. 18): it is
        // not a requested attribute, so it goes with every assertion of a user who has it.
        .filter(|(name, _)| {
            *name == "spid:Purpose" || released.is_none_or(|r| r.iter().any(|n| n == name))
        })
        .collect();
    if !attributes.is_empty() {
        xml.push_str("<saml:AttributeStatement>");
        for (name, value) in attributes {
            let _ = write!(
                xml,
                "<saml:Attribute Name=\"{}\" NameFormat=\"{ATTRNAME_BASIC}\">\
                 <saml:AttributeValue xsi:type=\"xs:string\">{}</saml:AttributeValue>\
                 </saml:Attribute>",
                escape(name),
                escape(value)
            );
        }
        xml.push_str("</saml:AttributeStatement>");
    }
    xml.push_str("</saml:Assertion></samlp:Response>");

    let signed = sign(&xml, &assertion_id, key)?;
    sign(&signed, &response_id, key)
}

/// A signed Response with no Assertion telling the SP the user cancelled: `Responder` /
/// `AuthnFailed`, `StatusMessage` `ErrorCode nr25`.
pub(crate) fn cancelled(
    idp: &Idp,
    request: &IncomingRequest,
    now: SystemTime,
) -> Result<String, String> {
    failed(idp, request, now, CANCELLED_MESSAGE)
}

/// The `StatusMessage` of a login refused because the person's age does not fit the
/// request's `spid:AgeLimit`. The AgID guidelines for minors prescribe the page the IdP shows
/// but no `ErrorCode` number for the SP, so this IdP sends the anomaly status
/// (`Responder` / `AuthnFailed`) with a plain message that is no SPID number.
pub(crate) const AGE_LIMIT_MESSAGE: &str = "spid:AgeLimit not met";

/// A signed Response with no Assertion: `Responder` / `AuthnFailed` with `message`.
pub(crate) fn failed(
    idp: &Idp,
    request: &IncomingRequest,
    now: SystemTime,
    message: &str,
) -> Result<String, String> {
    let response_id = random_id(&idp.rng)?;
    let issued = instant(now)?;
    let mut xml = String::with_capacity(2048);
    response_open(
        &mut xml,
        &response_id,
        &issued,
        &escape(&request.acs_url),
        &escape(&request.id),
        &escape(&idp.entity_id),
    );
    let _ = write!(
        xml,
        "<samlp:Status><samlp:StatusCode Value=\"{STATUS_RESPONDER}\">\
         <samlp:StatusCode Value=\"{STATUS_AUTHN_FAILED}\"/></samlp:StatusCode>\
         <samlp:StatusMessage>{}</samlp:StatusMessage></samlp:Status>\
         </samlp:Response>",
        escape(message)
    );
    sign(&xml, &response_id, &idp.key)
}

fn response_open(
    xml: &mut String,
    id: &str,
    issued: &str,
    acs: &str,
    in_response_to: &str,
    idp: &str,
) {
    let _ = write!(
        xml,
        "<samlp:Response xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" \
         xmlns:xs=\"{XS_NS}\" xmlns:xsi=\"{XSI_NS}\" ID=\"{id}\" Version=\"2.0\" \
         IssueInstant=\"{issued}\" Destination=\"{acs}\" InResponseTo=\"{in_response_to}\">\
         <saml:Issuer Format=\"{NAMEID_ENTITY}\">{idp}</saml:Issuer>"
    );
}

/// The IdP metadata, signed: one `IDPSSODescriptor` with the signing certificate,
/// `SingleLogoutService` for HTTP-Redirect and HTTP-POST at `slo_url`, and
/// `SingleSignOnService` for both at `sso_url`.
pub(crate) fn metadata(idp: &Idp) -> Result<String, String> {
    let id = random_id(&idp.rng)?;
    let certificate = base64::engine::general_purpose::STANDARD.encode(idp.key.certificate_der());
    let sso = escape(&idp.sso_url);
    let slo = escape(&idp.slo_url);
    let mut xml = String::with_capacity(4096);
    let _ = write!(
        xml,
        "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{}\" xmlns:saml=\"{SAML_NS}\" \
         ID=\"{id}\" entityID=\"{}\">\
         <md:IDPSSODescriptor protocolSupportEnumeration=\"{SAMLP_NS}\" \
         WantAuthnRequestsSigned=\"true\">\
         <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>\
         <ds:X509Certificate>{certificate}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\
         <md:SingleLogoutService Binding=\"{BINDING_REDIRECT}\" Location=\"{slo}\"/>\
         <md:SingleLogoutService Binding=\"{BINDING_POST}\" Location=\"{slo}\"/>\
         <md:NameIDFormat>{NAMEID_TRANSIENT}</md:NameIDFormat>\
         <md:SingleSignOnService Binding=\"{BINDING_REDIRECT}\" Location=\"{sso}\"/>\
         <md:SingleSignOnService Binding=\"{BINDING_POST}\" Location=\"{sso}\"/>",
        xmldsig::DSIG_NS,
        escape(&idp.entity_id),
    );
    for name in ADVERTISED {
        let _ = write!(
            xml,
            "<saml:Attribute Name=\"{name}\" NameFormat=\"{ATTRNAME_BASIC}\"/>"
        );
    }
    xml.push_str(
        "</md:IDPSSODescriptor>\
         <md:Organization>\
         <md:OrganizationName xml:lang=\"it\">Varco dev IdP - SOLO PER TEST</md:OrganizationName>\
         <md:OrganizationName xml:lang=\"en\">Varco dev IdP - TEST ONLY</md:OrganizationName>\
         <md:OrganizationDisplayName xml:lang=\"it\">Varco dev IdP</md:OrganizationDisplayName>\
         <md:OrganizationDisplayName xml:lang=\"en\">Varco dev IdP</md:OrganizationDisplayName>\
         <md:OrganizationURL xml:lang=\"it\">https://example.invalid/</md:OrganizationURL>\
         <md:OrganizationURL xml:lang=\"en\">https://example.invalid/</md:OrganizationURL>\
         </md:Organization>\
         </md:EntityDescriptor>",
    );
    sign(&xml, &id, &idp.key)
}

fn sign(xml: &str, id: &str, key: &SigningKey) -> Result<String, String> {
    sign_enveloped(xml, id, key, key.default_method(), DigestMethod::Sha256)
        .map_err(|e| format!("signing failed: {e}"))
}

fn instant(t: SystemTime) -> Result<String, String> {
    saml::format_instant(t).ok_or_else(|| "the clock is out of range".into())
}
