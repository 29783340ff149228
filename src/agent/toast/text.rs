//! Plain text made safe for the formats toasts are written in: freedesktop body markup
//! (Linux) and toast XML (Windows). Both read `&`, `<` and `>` as markup; XML also needs
//! quotes escaped in attributes and forbids most control characters (and U+FFFE, U+FFFF)
//! outright: a toast holding one would not load. Both first neutralise control
//! characters and bidi overrides ([`printable`]), so no app can drive what shows them.

use crate::protocol::display::printable;

/// Plain text for a freedesktop body a server may read as markup (`<b>`, `&amp;`, ...).
#[cfg(any(target_os = "linux", test))]
pub fn escape_markup(text: &str) -> String {
    escape(text, false)
}

/// Text safe inside an XML element or a quoted attribute; characters XML 1.0 forbids
/// (a toast with one would not load) become U+FFFD.
#[cfg(any(windows, test))]
pub fn escape_xml(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, xml: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if xml => out.push_str("&quot;"),
            '\'' if xml => out.push_str("&apos;"),
            c if xml && !is_xml_char(c) => out.push('\u{FFFD}'),
            other => out.push(other),
        }
    }
    out
}

/// Whether XML 1.0 allows `c` at all (its `Char` production: no control characters
/// but tab, newline and return, and not U+FFFE or U+FFFF).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_body_is_escaped() {
        assert_eq!(
            escape_markup("<b>5 > 3 & 2 < 4</b> \"q\"\u{1}\u{202E}"),
            "&lt;b&gt;5 &gt; 3 &amp; 2 &lt; 4&lt;/b&gt; \"q\"␁\u{FFFD}"
        );
    }

    /// Every Unicode scalar value, escaped, parses as XML and reads back as itself, or
    /// as U+FFFD where XML forbids it.
    #[test]
    fn every_character_survives_xml() {
        let all: String = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .collect();
        let xml = format!("<t a=\"{}\">{}</t>", escape_xml(&all), escape_xml(&all));
        let document = roxmltree::Document::parse(&xml).unwrap();
        let expected: String = all
            .chars()
            .map(|c| match printable(&c.to_string()).chars().next() {
                Some(shown) if is_xml_char(shown) => shown,
                _ => '\u{FFFD}',
            })
            .collect();
        let root = document.root_element();
        // XML normalises line ends: a lone \r in text reads back as \n.
        assert_eq!(root.text().unwrap(), expected.replace('\r', "\n"));
        // In an attribute, tab, newline and return are also normalised to spaces.
        let attribute = expected.replace(['\t', '\n', '\r'], " ");
        assert_eq!(root.attribute("a").unwrap(), attribute);
    }

    #[test]
    fn xml_escapes_quotes_and_drops_forbidden_controls() {
        assert_eq!(
            escape_xml("a\"b'c<&>\u{1}\t\n\u{FFFF}"),
            "a&quot;b&apos;c&lt;&amp;&gt;␁\t\n\u{FFFD}"
        );
    }
}
