//! Text from apps made harmless to show: what a notification says must never drive the
//! terminal or the desktop that shows it.
//!
//! [`printable`] replaces every control character but tab and newline (C0, DEL, C1: the
//! ESC, BEL and CSI that retitle a window, clear a screen or move the cursor), the
//! bidirectional overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E,
//! U+200F, U+061C: they make text read in another order than it is stored) and the line
//! and paragraph separators (U+2028, U+2029: a line break a table does not expect) with
//! a visible stand-in. C0 controls become their Unicode control
//! pictures (ESC shows as `␛`), everything else U+FFFD. Machine output (`--json`) is
//! never passed through here: it stays exact.

use std::borrow::Cow;

/// Whether a character must not reach a terminal or a toast as it is.
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// The visible stand-in for a hazardous character.
fn stand_in(c: char) -> char {
    match u32::from(c) {
        code @ 0..=0x1F => char::from_u32(0x2400 + code).unwrap_or('\u{FFFD}'),
        0x7F => '\u{2421}',
        _ => '\u{FFFD}',
    }
}

/// `text` with every control character but tab and newline, and every bidi override,
/// replaced by a visible stand-in; borrowed when there is nothing to replace.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_hazard(c) { stand_in(c) } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_are_shown_not_obeyed() {
        let attack = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{9b}31m\u{7f}";
        assert_eq!(printable(attack), "␛]0;PWNED␇␛[2J\u{FFFD}31m␡");
    }

    #[test]
    fn tab_newline_and_ordinary_text_pass_unchanged() {
        let text = "Backup done\n\t42 GB — ✓ ünïcödé 日本";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn bidi_overrides_and_carriage_returns_are_replaced() {
        assert_eq!(
            printable("a\u{202E}fdp.exe\u{2066}\r"),
            "a\u{FFFD}fdp.exe\u{FFFD}␍"
        );
    }

    #[test]
    fn bidi_marks_and_unicode_line_separators_are_replaced() {
        assert_eq!(
            printable("a\u{200F}b\u{061C}c\u{2028}d\u{2029}e\u{200E}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}"
        );
    }

    #[test]
    fn nothing_hazardous_survives_any_input() {
        let all: String = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .collect();
        assert!(!printable(&all).chars().any(is_hazard));
    }
}
