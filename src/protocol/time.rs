//! `Timestamp`: a UTC instant with millisecond precision.
//!
//! On the wire (JSON) it is an RFC 3339 string in UTC (`2026-01-02T03:04:05.678Z`);
//! in the stores (postcard) it is the number of milliseconds since the Unix epoch.
//! The choice is made by `is_human_readable`, so one type serves both.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(millis)
    }

    /// Builds a timestamp from milliseconds since the epoch.
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved forward by `d` (saturating).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        let add = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(add))
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }

    /// Parses an RFC 3339 date-time (any offset; converted to UTC).
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| format!("not an RFC 3339 date-time ({e})"))?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis)
            .map(Self)
            .map_err(|_| "date-time out of range".to_owned())
    }

    /// Formats as RFC 3339 in UTC.
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().as_str().to_owned()
    }

    /// The RFC 3339 form in UTC, on the stack: what `Display` and the JSON form write,
    /// with no allocation (a post writes several timestamps).
    fn rfc3339(self) -> Rfc3339Text {
        let mut text = Rfc3339Text::default();
        let nanos = i128::from(self.0) * 1_000_000;
        let mut rest = &mut text.bytes[..];
        let formatted = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format_into(&mut rest, &Rfc3339).ok());
        // What was written is what the slice moved past (the count `format_into`
        // returns leaves out part of the fraction).
        let len = TEXT_ROOM - rest.len();
        match formatted {
            Some(_) => text.len = len,
            None => text.set(EPOCH),
        }
        text
    }
}

/// What an instant outside the formattable years is written as.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Room for the longest RFC 3339 text [`Rfc3339Text`] holds.
const TEXT_ROOM: usize = 40;

/// An RFC 3339 date-time's text, held inline: the longest, with a five-digit year and
/// nanoseconds, is 36 bytes.
struct Rfc3339Text {
    bytes: [u8; TEXT_ROOM],
    len: usize,
}

impl Default for Rfc3339Text {
    fn default() -> Self {
        Self {
            bytes: [0; TEXT_ROOM],
            len: 0,
        }
    }
}

impl Rfc3339Text {
    fn set(&mut self, text: &str) {
        self.bytes[..text.len()].copy_from_slice(text.as_bytes());
        self.len = text.len();
    }

    fn as_str(&self) -> &str {
        // The formatter writes ASCII only; anything else would be a bug in it.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or(EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc3339().as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.rfc3339().as_str())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Rfc3339Visitor)
        } else {
            i64::deserialize(deserializer).map(Timestamp)
        }
    }
}

/// Reads the RFC 3339 text in place (no copy when the input holds it unescaped).
struct Rfc3339Visitor;

impl de::Visitor<'_> for Rfc3339Visitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date-time string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse_rfc3339(text).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::parse_rfc3339("2026-01-02T03:04:05.678Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05.678Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-01-02T03:04:05.678Z\"");
        let bytes = postcard::to_stdvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t = Timestamp::parse_rfc3339("2026-01-02T05:04:05+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn years_past_9999_are_written_as_the_epoch_not_cut_short() {
        let far = Timestamp::from_millis(i64::MAX);
        assert_eq!(far.to_rfc3339(), EPOCH);
        assert_eq!(format!("{far}"), EPOCH);
        let last = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(last.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Timestamp::parse_rfc3339("tomorrow").is_err());
    }
}
