//! What a setting takes and how its text is read: each [`Kind`] of value, its parser
//! (whose error says what is expected), and the few readers other modules use on their
//! own (durations, host lists, the store).

use std::time::Duration;

/// What a key takes; every value (from a flag, the environment or the file) is read
/// as text by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number, 0 or more.
    Count,
    /// A duration: `500ms`, `10s`, `2m`, `1h`, `90d`, or plain seconds.
    Duration,
    /// An IP address and port, `127.0.0.1:7319` or `[::]:443`.
    Address,
    /// A file or directory.
    Path,
    /// `true` or `false`.
    Bool,
    /// One URL, or several separated by commas (the nodes of one service).
    Urls,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A secret (never printed by `tidings config`).
    Secret,
    /// A daily span of local time, `22:00-07:00`.
    Span,
    /// Host names, separated by commas.
    Hosts,
    /// The service's store: `sled`, or a PostgreSQL connection string (a
    /// `postgres://` URL or libpq's `key=value` form).
    Store,
}

impl Kind {
    /// Reads `text` as a value of this kind; the error says what is expected.
    pub fn parse(self, text: &str) -> Result<Value, String> {
        Ok(match self {
            Kind::Count => Value::Count(parse_count(text)?),
            Kind::Duration => Value::Duration(parse_duration(text)?),
            Kind::Address => Value::Address(text.parse().map_err(|_| {
                format!("{text:?} is not an address and port, e.g. 127.0.0.1:7319")
            })?),
            Kind::Path | Kind::Secret | Kind::Urls if text.is_empty() => {
                return Err("it is empty".to_owned());
            }
            Kind::Path => Value::Path(text.into()),
            Kind::Secret => Value::Text(text.to_owned()),
            Kind::Bool => Value::Bool(parse_bool(text)?),
            Kind::Urls => {
                for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
                    url::Url::parse(part).map_err(|e| {
                        format!("{part:?} is not a URL ({e}), e.g. https://a.example.com,https://b.example.com")
                    })?;
                }
                Value::Text(text.to_owned())
            }
            Kind::Span => {
                text.parse::<super::quiet::QuietHours>()?;
                Value::Text(text.to_owned())
            }
            Kind::Hosts => {
                for part in host_list(text) {
                    crate::protocol::validate::validate_host_name("allowed_hosts", part)
                        .map_err(|e| e.message)?;
                }
                Value::Text(text.to_owned())
            }
            Kind::Store => Value::Text(parse_store(text)?),
            Kind::Choice(words) if words.contains(&text) => Value::Text(text.to_owned()),
            Kind::Choice(words) => {
                return Err(format!("{text:?} is not one of {}", words.join(", ")));
            }
        })
    }

    /// The placeholder shown in `--help`.
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Count => "N",
            Kind::Duration => "TIME",
            Kind::Address => "ADDR",
            Kind::Path => "PATH",
            Kind::Bool => "BOOL",
            Kind::Urls => "URL[,URL...]",
            Kind::Choice(_) => "WORD",
            Kind::Secret => "SECRET",
            Kind::Span => "HH:MM-HH:MM",
            Kind::Hosts => "HOST[,HOST...]",
            Kind::Store => "sled|URL",
        }
    }
}

/// A value read by a [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// [`Kind::Count`].
    Count(u64),
    /// [`Kind::Duration`].
    Duration(Duration),
    /// [`Kind::Address`].
    Address(std::net::SocketAddr),
    /// [`Kind::Path`].
    Path(std::path::PathBuf),
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Urls`], [`Kind::Choice`], [`Kind::Secret`], [`Kind::Span`],
    /// [`Kind::Store`].
    Text(String),
}

/// The names of a [`Kind::Hosts`] value.
pub fn host_list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ' ']).filter(|p| !p.is_empty())
}

/// Reads a `store` value: `sled` or a PostgreSQL connection string.
fn parse_store(text: &str) -> Result<String, String> {
    let postgres =
        text.starts_with("postgres://") || text.starts_with("postgresql://") || text.contains('=');
    if text == "sled" || postgres {
        return Ok(text.to_owned());
    }
    Err(format!(
        "{text:?} is neither sled nor a PostgreSQL URL (postgres://user@host/db)"
    ))
}

/// `store` as `tidings config` shows it: a password in the URL hidden.
pub fn shown_store(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("(secret)"));
            url.to_string()
        }
        _ if text.contains("password=") => {
            "(secret: the connection string has a password)".to_owned()
        }
        _ => text.to_owned(),
    }
}

/// A whole number, 0 or more.
pub fn parse_count(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

/// `true` or `false`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

/// `500ms`, `10s`, `2m`, `1h`, `90d`, `1h30m`, `2 hours`, ISO 8601's `PT10S`, or plain
/// seconds: jiff's span syntax, with a day taken as 24 hours and a week as 7 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let hint = "use e.g. 500ms, 10s, 2m, 1h or 90d";
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: {hint}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("{text:?} has no fixed length (months or years): {hint}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_or_without_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2 hours"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("PT10S"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse_duration("3mo")
                .unwrap_err()
                .contains("no fixed length")
        );
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
    }
}
