//! Scopes: the fixed set this provider knows, as a bit set.

/// One known scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `openid`: an OpenID Connect request; `sub`, `acr`, `amr`, `auth_time`.
    Openid,
    /// `profile`: `given_name`, `family_name`, `name`, `birthdate`.
    Profile,
    /// `email`: `email`.
    Email,
    /// `phone`: `phone_number`.
    Phone,
    /// `address`: `address`.
    Address,
    /// `offline_access`: a refresh token, for a client allowed to have one.
    OfflineAccess,
}

impl Scope {
    /// Every scope, in the order the discovery document lists them.
    pub const ALL: [Scope; 6] = [
        Scope::Openid,
        Scope::Profile,
        Scope::Email,
        Scope::Phone,
        Scope::Address,
        Scope::OfflineAccess,
    ];

    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Openid => "openid",
            Scope::Profile => "profile",
            Scope::Email => "email",
            Scope::Phone => "phone",
            Scope::Address => "address",
            Scope::OfflineAccess => "offline_access",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Parses a name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// The empty set.
    #[must_use]
    pub fn empty() -> Scopes {
        Scopes(0)
    }

    /// Every known scope.
    #[must_use]
    pub fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    /// Whether `s` is in the set.
    #[must_use]
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Adds `s`.
    pub fn insert(&mut self, s: Scope) {
        self.0 |= s.bit();
    }

    /// Removes `s`.
    pub fn remove(&mut self, s: Scope) {
        self.0 &= !s.bit();
    }

    /// Whether every scope of `self` is in `other`.
    #[must_use]
    pub fn is_subset(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    /// The space-separated names, in [`Scope::ALL`] order.
    #[must_use]
    pub fn to_string_list(self) -> String {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        names.join(" ")
    }

    /// Parses a space-separated list: an unknown name is `None` (the caller decides whether
    /// that is an error), a repeated one is harmless.
    #[must_use]
    pub fn parse_list(s: &str) -> Option<Scopes> {
        let mut out = Scopes::empty();
        for name in s.split(' ').filter(|n| !n.is_empty()) {
            out.insert(Scope::parse(name)?);
        }
        Some(out)
    }

    /// The bits, for storage.
    #[must_use]
    pub fn bits(self) -> u8 {
        self.0
    }

    /// From stored bits (unknown bits dropped).
    #[must_use]
    pub fn from_bits(b: u8) -> Scopes {
        Scopes(b & Scopes::all().0)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Scopes {
        let mut out = Scopes::empty();
        for s in iter {
            out.insert(s);
        }
        out
    }
}
