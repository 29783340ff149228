//! `Timestamp`: a UTC instant with millisecond precision.
//!
//! On the wire (JSON) it is an RFC 3339 string in UTC (`2026-01-02T03:04:05.678Z`);
//! in the stores (postcard) it is the number of milliseconds since the Unix epoch.
//! The choice is made by `is_human_readable`, so one type serves both.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::fmt::temporal::Pieces;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

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

    /// Parses an RFC 3339 date-time (any offset; converted to UTC). jiff reads it, and
    /// also the ISO 8601 forms it knows (a space for the `T`, no seconds); years are
    /// held to RFC 3339's 0000 to 9999.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let bad = |why: String| format!("not an RFC 3339 date-time ({why})");
        let pieces = Pieces::parse(text).map_err(|e| bad(e.to_string()))?;
        let time = pieces
            .time()
            .ok_or_else(|| bad("no time of day".to_owned()))?;
        let offset = pieces
            .to_numeric_offset()
            .ok_or_else(|| bad("no offset: end it with Z for UTC".to_owned()))?;
        let days = EPOCH_DAY
            .until((jiff::Unit::Day, pieces.date()))
            .map_err(|e| bad(e.to_string()))?
            .get_days();
        let millis = i64::from(days) * MILLIS_PER_DAY + millis_of_day(time)
            - i64::from(offset.seconds()) * 1000;
        if (FIRST_MILLIS..=LAST_MILLIS).contains(&millis) {
            Ok(Self(millis))
        } else {
            Err("date-time out of range (years 0000 to 9999)".to_owned())
        }
    }

    /// Formats as RFC 3339 in UTC.
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().as_str().to_owned()
    }

    /// The RFC 3339 form in UTC, on the stack: what `Display` and the JSON form write,
    /// with no allocation (a post writes several timestamps). Seconds carry as many
    /// fraction digits as they need (none, or up to three).
    fn rfc3339(self) -> Rfc3339Text {
        let mut text = Rfc3339Text::default();
        if !self.write_rfc3339(&mut text) {
            text.len = 0;
            text.push(EPOCH);
        }
        text
    }

    /// Writes the RFC 3339 form; false for an instant outside its years. (A civil date
    /// and time, not a `jiff::Timestamp`: that stops a day short of the year 10000.)
    fn write_rfc3339(self, text: &mut Rfc3339Text) -> bool {
        if !(FIRST_MILLIS..=LAST_MILLIS).contains(&self.0) {
            return false;
        }
        let day = jiff::Span::new().try_days(self.0.div_euclid(MILLIS_PER_DAY));
        let date = day.and_then(|days| EPOCH_DAY.checked_add(days));
        let time = jiff::civil::Time::midnight().checked_add(jiff::SignedDuration::from_millis(
            self.0.rem_euclid(MILLIS_PER_DAY),
        ));
        match (date, time) {
            (Ok(date), Ok(time)) => {
                fmt::Write::write_fmt(text, format_args!("{}Z", date.to_datetime(time))).is_ok()
            }
            _ => false,
        }
    }
}

/// The day of the Unix epoch.
const EPOCH_DAY: jiff::civil::Date = jiff::civil::date(1970, 1, 1);
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since midnight (a fraction below a millisecond is dropped).
fn millis_of_day(time: jiff::civil::Time) -> i64 {
    i64::from(time.hour()) * 3_600_000
        + i64::from(time.minute()) * 60_000
        + i64::from(time.second()) * 1000
        + i64::from(time.subsec_nanosecond()) / 1_000_000
}

/// The first instant RFC 3339 can write: 0000-01-01T00:00:00Z.
const FIRST_MILLIS: i64 = -62_167_219_200_000;
/// The last: 9999-12-31T23:59:59.999Z.
const LAST_MILLIS: i64 = 253_402_300_799_999;

/// What an instant outside the formattable years is written as.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Room for the longest RFC 3339 text [`Rfc3339Text`] holds.
const TEXT_ROOM: usize = 32;

/// An RFC 3339 date-time's text, held inline: the longest, with milliseconds, is 24
/// bytes.
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
    fn push(&mut self, text: &str) -> bool {
        let Some(room) = self.bytes.get_mut(self.len..self.len + text.len()) else {
            return false;
        };
        room.copy_from_slice(text.as_bytes());
        self.len += text.len();
        true
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or(EPOCH)
    }
}

impl fmt::Write for Rfc3339Text {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.push(text) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
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
    fn garbage_and_years_rfc_3339_cannot_write_are_refused() {
        assert!(Timestamp::parse_rfc3339("tomorrow").is_err());
        assert!(
            Timestamp::parse_rfc3339("2026-01-02T03:04:05").is_err(),
            "no offset"
        );
        assert!(Timestamp::parse_rfc3339("-000001-01-01T00:00:00Z").is_err());
        let first = Timestamp::parse_rfc3339("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(first.as_millis(), FIRST_MILLIS);
        assert_eq!(first.to_string(), "0000-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_millis(FIRST_MILLIS - 1).to_string(), EPOCH);
    }

    #[test]
    fn fractions_take_the_digits_they_need() {
        for (millis, text) in [
            (1_767_323_045_000, "2026-01-02T03:04:05Z"),
            (1_767_323_045_100, "2026-01-02T03:04:05.1Z"),
            (1_767_323_045_120, "2026-01-02T03:04:05.12Z"),
            (1_767_323_045_001, "2026-01-02T03:04:05.001Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(Timestamp::from_millis(millis).to_string(), text);
            assert_eq!(Timestamp::parse_rfc3339(text).unwrap().as_millis(), millis);
        }
        let nanos = Timestamp::parse_rfc3339("2026-01-02T03:04:05.123456789Z").unwrap();
        assert_eq!(nanos.as_millis(), 1_767_323_045_123);
    }
}
