//! The algorithms this crate knows, by their XML-DSig URIs. Anything not listed here cannot be
//! expressed in its types: SHA-1, MD5 and HMAC have no variant.

/// XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive C14N namespace (also the URI of the algorithm, and of InclusiveNamespaces).
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Exclusive C14N with comments.
pub const EXC_C14N_WITH_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// The family of a public key; it decides which signature methods it can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (at least 2048 bits; enforced when verifying).
    Rsa,
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

/// A signature algorithm accepted by the verifier and usable by the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the SPID default).
    RsaSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaSha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaSha512,
    /// RSASSA-PSS, MGF1 and salt length from SHA-256 (RFC 6931 `sha256-rsa-MGF1`).
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512.
    RsaPssSha512,
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
}

impl SignatureMethod {
    /// Every method, strongest last.
    pub const ALL: [SignatureMethod; 8] = [
        Self::RsaSha256,
        Self::RsaSha384,
        Self::RsaSha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::EcdsaP256Sha256,
        Self::EcdsaP384Sha384,
    ];

    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Self::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            Self::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            Self::RsaPssSha256 => "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
            Self::RsaPssSha384 => "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
            Self::RsaPssSha512 => "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
            Self::EcdsaP256Sha256 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            Self::EcdsaP384Sha384 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        }
    }

    /// The method with this URI, if it is one we accept.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.uri() == uri)
    }

    /// The aws-lc-rs verification algorithm (aws-lc-rs, not ring, verifies: its keys are
    /// parsed once, see `TrustedKey`). ECDSA signatures in XML-DSig are `r || s`
    /// (RFC 4050 / XML-DSig 1.1 §6.4.3), hence the FIXED encodings.
    pub(crate) fn verification(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature as s;
        match self {
            Self::RsaSha256 => &s::RSA_PKCS1_2048_8192_SHA256,
            Self::RsaSha384 => &s::RSA_PKCS1_2048_8192_SHA384,
            Self::RsaSha512 => &s::RSA_PKCS1_2048_8192_SHA512,
            Self::RsaPssSha256 => &s::RSA_PSS_2048_8192_SHA256,
            Self::RsaPssSha384 => &s::RSA_PSS_2048_8192_SHA384,
            Self::RsaPssSha512 => &s::RSA_PSS_2048_8192_SHA512,
            Self::EcdsaP256Sha256 => &s::ECDSA_P256_SHA256_FIXED,
            Self::EcdsaP384Sha384 => &s::ECDSA_P384_SHA384_FIXED,
        }
    }

    /// This method's position in [`SignatureMethod::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The kind of key this method needs.
    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            Self::EcdsaP256Sha256 => KeyKind::EcP256,
            Self::EcdsaP384Sha384 => KeyKind::EcP384,
            _ => KeyKind::Rsa,
        }
    }
}

/// A digest algorithm accepted for references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMethod {
    /// SHA-256 (the SPID default).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestMethod {
    /// Every method.
    pub const ALL: [DigestMethod; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            Self::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
            Self::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
        }
    }

    /// The method with this URI, if it is one we accept.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.uri() == uri)
    }

    pub(crate) fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// Algorithms refused by name, so the error says "weak" rather than "unknown": SHA-1 and MD5
/// digests or signatures, and every HMAC (a shared secret is never a key from metadata).
/// Public for the HTTP-Redirect binding's `SigAlg`, which is checked outside XML.
pub fn is_weak_algorithm(uri: &str) -> bool {
    is_weak(uri)
}

pub(crate) fn is_weak(uri: &str) -> bool {
    const WEAK: [&str; 9] = [
        "http://www.w3.org/2000/09/xmldsig#sha1",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#md5",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        "http://www.w3.org/2009/xmldsig11#dsa-sha256",
        "http://www.w3.org/2007/05/xmldsig-more#sha1-rsa-MGF1",
    ];
    WEAK.contains(&uri) || uri.contains("hmac")
}

#[cfg(test)]
mod tests {
    use super::SignatureMethod;

    #[test]
    fn each_method_indexes_its_own_prepared_key_slot() {
        for (i, m) in SignatureMethod::ALL.into_iter().enumerate() {
            assert_eq!(m.index(), i, "{m:?}");
        }
    }
}
