//! Plain text made safe for the formats toasts are written in: freedesktop body markup
//! (Linux) and toast XML (Windows). Both read `&`, `<` and `>` as markup; XML also needs
//! quotes escaped in attributes and forbids most control characters outright.

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
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if xml => out.push_str("&quot;"),
            '\'' if xml => out.push_str("&apos;"),
            c if xml && c < ' ' && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_body_is_escaped() {
        assert_eq!(
            escape_markup("<b>5 > 3 & 2 < 4</b> \"q\"\u{1}"),
            "&lt;b&gt;5 &gt; 3 &amp; 2 &lt; 4&lt;/b&gt; \"q\"\u{1}"
        );
    }

    #[test]
    fn xml_escapes_quotes_and_drops_forbidden_controls() {
        assert_eq!(
            escape_xml("a\"b'c<&>\u{1}\t\n"),
            "a&quot;b&apos;c&lt;&amp;&gt;\u{FFFD}\t\n"
        );
    }
}
