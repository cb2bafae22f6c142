//! Text from untrusted input (paths and names read from an ELF, a registry's answer) made safe
//! to print: control characters, which could move a terminal's cursor or recolour it, are
//! shown escaped.

use std::borrow::Cow;

/// `s` with every control character escaped as Rust does (`\n`, `\u{1b}`); unchanged (and not
/// copied) when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(printable("/lib/libc.so.6"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("é"), "é");
    }
}
