//! The payload of the `tidings_feed` announcement: what a committed batch tells every
//! node, and reading it back (the one-change form of earlier versions too).

use crate::protocol::{Seq, Timestamp, UserId};

/// The payload of a batch's `pg_notify`: when it was committed (milliseconds, for the
/// notify-lag metric), then a line per user, `"<new head> <user id>"`:
/// `"1733480000000\n42 3f0c...\n7 9ab1..."`. A user id is a UUID (no newline).
pub(in super::super) fn batch_payload<'a>(
    heads: impl IntoIterator<Item = (&'a UserId, &'a Seq)>,
    at: Timestamp,
) -> String {
    use std::fmt::Write as _;
    let mut text = at.as_millis().to_string();
    for (user, seq) in heads {
        let _ = write!(text, "\n{} {}", seq.0, user.as_str());
    }
    text
}

/// The bytes one user adds to [`batch_payload`] at most.
pub(in super::super) fn entry_size(user: &UserId) -> usize {
    // A newline, up to 20 digits, a space, the id.
    22 + user.as_str().len()
}

/// A feed notification's time and heads. Besides the batch form of [`batch_payload`],
/// the one-change form `"<seq> <committed millis> <user id>"` of earlier versions is
/// read too, so a node follows one that is not upgraded yet.
pub(super) fn parse(payload: &str) -> Option<(Timestamp, Vec<(UserId, Seq)>)> {
    let Some((at, lines)) = payload.split_once('\n') else {
        let mut parts = payload.splitn(3, ' ');
        let seq = parts.next()?.parse().ok()?;
        let at = parts.next()?.parse().ok()?;
        let user = parts.next().filter(|u| !u.is_empty())?;
        return Some((
            Timestamp::from_millis(at),
            vec![(UserId::new(user), Seq(seq))],
        ));
    };
    let heads = lines
        .split('\n')
        .map(|line| {
            let (seq, user) = line.split_once(' ')?;
            let user = Some(user).filter(|u| !u.is_empty())?;
            Some((UserId::new(user), Seq(seq.parse().ok()?)))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((Timestamp::from_millis(at.parse().ok()?), heads))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn payloads_round_trip_and_bad_ones_are_refused() {
        let (a, b) = (UserId::new("a"), UserId::new("b"));
        let heads = BTreeMap::from([(a.clone(), Seq(42)), (b.clone(), Seq(7))]);
        let text = batch_payload(&heads, Timestamp::from_millis(9));
        assert_eq!(text, "9\n42 a\n7 b");
        assert_eq!(
            parse(&text),
            Some((Timestamp::from_millis(9), vec![(a, Seq(42)), (b, Seq(7))]))
        );
        assert!(text.len() <= 1 + heads.keys().map(entry_size).sum::<usize>());
        assert_eq!(parse("9\nx a"), None);
        assert_eq!(parse("9\n1 "), None);
        assert_eq!(parse("x\n1 a"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_one_change_payloads_of_earlier_versions_are_read_too() {
        assert_eq!(
            parse("42 7 u 1"),
            Some((
                Timestamp::from_millis(7),
                vec![(UserId::new("u 1"), Seq(42))]
            ))
        );
        assert_eq!(parse("x 1 u"), None);
        assert_eq!(parse("1 2"), None);
        assert_eq!(parse("1 2 "), None);
    }
}
