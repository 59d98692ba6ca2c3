//! The algorithm allow-list: a leaf module, so keys (`jwk`) and tokens (`jws`) both point
//! down at it.

use ring::signature;

use crate::Error;
use crate::error::clip;

/// The signature algorithms accepted: RSA PKCS#1 v1.5 and PSS with SHA-2, ECDSA P-256 and
/// P-384. The SPID/CIE OpenID Connect rules require RS256 and RS512 and recommend ES256,
/// PS256, PS512 and ES512; ES512 (P-521) has no implementation in ring and is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, salt 32).
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256, `r ‖ s` signature.
    Es256,
    /// ECDSA P-384 with SHA-384, `r ‖ s` signature.
    Es384,
}

impl Alg {
    /// The algorithm named `name`; `none` (any case) and `HS*` have their own errors.
    pub fn from_name(name: &str) -> Result<Alg, Error> {
        Ok(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            n if n.eq_ignore_ascii_case("none") => return Err(Error::AlgNone),
            // Bytes, not a `str` slice: a multi-byte character may straddle index 2.
            n if n
                .as_bytes()
                .get(..2)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"HS")) =>
            {
                return Err(Error::AlgHmac);
            }
            n => return Err(Error::AlgUnsupported { alg: clip(n) }),
        })
    }

    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        !matches!(self, Alg::Es256 | Alg::Es384)
    }

    pub(crate) fn rsa_params(self) -> &'static signature::RsaParameters {
        match self {
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}
