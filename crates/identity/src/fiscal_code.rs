//! Italian fiscal code (codice fiscale) of a natural person: normalization and validation.

/// Why a fiscal code was refused; the value itself is never echoed.
pub(crate) type Reason = &'static str;

/// Digits substituted in case of omocodia (DM 12/03/1974, art. 6; Agenzia delle Entrate):
/// `L M N P Q R S T U V` stand for `0`…`9`.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Month letters, January to December.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Values of characters in odd positions (1st, 3rd, …), indexed by digit or letter ordinal.
const ODD: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];
/// Positions (0-based) that hold digits, possibly replaced by an omocodia letter.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// Normalizes a natural person's fiscal code: trims, upper-cases, strips one `TINIT-` prefix
/// (as SPID sends it), and checks structure, month, day and the check character, accepting
/// omocodia letters in the digit positions. Returns the 16-character code.
pub fn normalize_fiscal_code(raw: &str) -> Result<String, Reason> {
    let upper = raw.trim().to_ascii_uppercase();
    let code = upper.strip_prefix("TINIT-").unwrap_or(&upper);
    let b = code.as_bytes();
    if b.len() != 16 {
        return Err("length is not 16");
    }
    let mut digits = [0u8; 7];
    for (i, &c) in b.iter().enumerate() {
        if let Some(k) = DIGIT_POSITIONS.iter().position(|&p| p == i) {
            digits[k] = if c.is_ascii_digit() {
                c - b'0'
            } else if let Some(d) = OMOCODIA.iter().position(|&o| o == c) {
                d as u8
            } else {
                return Err("digit position holds neither a digit nor an omocodia letter");
            };
        } else if !c.is_ascii_uppercase() {
            return Err("letter position holds a non-letter");
        }
    }
    if !MONTHS.contains(&b[8]) {
        return Err("unknown month letter");
    }
    let day = digits[2] * 10 + digits[3];
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
        return Err("day out of range");
    }
    if b[15] != check_char(&b[..15]) {
        return Err("check character mismatch");
    }
    Ok(code.to_owned())
}

/// The check character over the first 15 characters (upper-case ASCII letters or digits).
fn check_char(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let ord = if c.is_ascii_digit() {
                c - b'0'
            } else {
                c - b'A'
            };
            if i % 2 == 0 {
                ODD[usize::from(ord)]
            } else {
                u32::from(ord)
            }
        })
        .sum();
    // sum % 26 < 26, so the cast cannot truncate.
    b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn known_codes() {
        assert_eq!(
            normalize_fiscal_code("RSSMRA85T10A562S").unwrap(),
            "RSSMRA85T10A562S"
        );
        assert_eq!(
            normalize_fiscal_code(" tinit-rssmra85t10a562s ").unwrap(),
            "RSSMRA85T10A562S"
        );
    }
}
