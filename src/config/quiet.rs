//! Quiet hours: a daily span of local time (`quiet_hours = "22:00-07:00"`) during which
//! the agent shows no toasts, as with do-not-disturb; it may wrap past midnight.

/// Minutes in a day.
const DAY: u16 = 24 * 60;

/// A daily span, in minutes since local midnight: `start` included, `end` not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u16,
    end: u16,
}

impl std::str::FromStr for QuietHours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || format!("{text:?} is not a span of the day like \"22:00-07:00\"");
        let (start, end) = text.split_once('-').ok_or_else(wrong)?;
        let (start, end) = (
            minute_of(start).ok_or_else(wrong)?,
            minute_of(end).ok_or_else(wrong)?,
        );
        if start == end {
            return Err(format!("{text:?} starts and ends at the same time"));
        }
        Ok(Self { start, end })
    }
}

/// `HH:MM` as minutes since midnight.
fn minute_of(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60 && minutes_digits(text)).then_some(hours * 60 + minutes)
}

/// Minutes are written with two digits (`7:05`, not `7:5`).
fn minutes_digits(text: &str) -> bool {
    text.trim().rsplit(':').next().is_some_and(|m| m.len() == 2)
}

impl QuietHours {
    /// Whether `minute` (since local midnight) is inside the span.
    pub fn contains(self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Minutes from `minute` (inside the span) to its end.
    pub fn minutes_left(self, minute: u16) -> u16 {
        (self.end + DAY - minute) % DAY
    }

    /// Minutes from `minute` (outside the span) to its next start.
    pub fn minutes_to_start(self, minute: u16) -> u16 {
        (self.start + DAY - minute) % DAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> u16 {
        minute_of(text).unwrap()
    }

    #[test]
    fn spans_within_a_day_and_past_midnight() {
        let night: QuietHours = "22:00-07:00".parse().unwrap();
        let lunch: QuietHours = "12:30-13:15".parse().unwrap();
        let cases = [
            (night, "21:59", false),
            (night, "22:00", true),
            (night, "03:00", true),
            (night, "06:59", true),
            (night, "07:00", false),
            (lunch, "12:29", false),
            (lunch, "12:30", true),
            (lunch, "13:14", true),
            (lunch, "13:15", false),
        ];
        for (span, time, inside) in cases {
            assert_eq!(span.contains(at(time)), inside, "{span:?} at {time}");
        }
        assert_eq!(night.minutes_left(at("23:00")), 8 * 60);
        assert_eq!(night.minutes_left(at("06:30")), 30);
        assert_eq!(lunch.minutes_left(at("13:00")), 15);
        assert_eq!(night.minutes_to_start(at("21:00")), 60);
        assert_eq!(night.minutes_to_start(at("07:00")), 15 * 60);
        assert_eq!(lunch.minutes_to_start(at("13:15")), 23 * 60 + 15);
    }

    #[test]
    fn a_bad_span_says_what_is_expected() {
        for bad in [
            "22-07",
            "22:00",
            "25:00-07:00",
            "22:00-07:60",
            "22:00-7:5",
            "22:00-22:00",
            "soon",
        ] {
            assert!(bad.parse::<QuietHours>().is_err(), "{bad}");
        }
        assert!(" 22:00 - 07:00 ".parse::<QuietHours>().is_ok());
    }
}
