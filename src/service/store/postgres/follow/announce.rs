//! The payload of the `tidings_feed` announcement: what a committed batch tells every
//! node, and reading it back (the one-change form of earlier versions too).
//!
//! When they fit, a batch's changes ride along ([`carried`]), so another node publishes
//! them without reading them back from the database; a batch too big for that names
//! only its heads, and the nodes read its changes.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::super::super::records::{NotificationRecord, decode};
use super::super::plan::Plan;
use crate::protocol::{Seq, Timestamp, UserId};

/// Bytes of a payload at most (PostgreSQL refuses 8000 or more).
const PAYLOAD_LIMIT: usize = 7_999;

/// Where the carried changes begin, after the heads.
const CARRIED: &str = "\n-";

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

/// The bytes the heads of `plan`'s announcement take at most.
pub(in super::super) fn heads_size(plan: &Plan) -> usize {
    20 + plan.heads.keys().map(entry_size).sum::<usize>()
}

/// The changes of `plan` (its rows, `encoded` as stored), to follow its heads in the
/// announcement: `"\n-"`, then for each user a line `"@<seqs taken> <user id>"` and a
/// line `"<head - seq> <base64 record>"` per row; empty when that would take the
/// payload (its heads taking `heads` bytes) past what PostgreSQL takes.
pub(in super::super) fn carried(plan: &Plan, encoded: &[Vec<u8>], heads: usize) -> String {
    use std::fmt::Write as _;
    let mut by_user: BTreeMap<&UserId, Vec<usize>> = BTreeMap::new();
    for (at, (user, _)) in plan.rows.iter().enumerate() {
        by_user.entry(user).or_default().push(at);
    }
    let mut text = String::from(CARRIED);
    for (user, head) in &plan.heads {
        let before = plan.before.get(user).copied().unwrap_or(Seq::ZERO);
        let _ = write!(
            text,
            "\n@{} {}",
            head.0.saturating_sub(before.0),
            user.as_str()
        );
        for &at in by_user.get(user).map_or(&[][..], Vec::as_slice) {
            let seq = plan.rows[at].1.seq;
            let _ = write!(text, "\n{} ", head.0.saturating_sub(seq.0));
            STANDARD.encode_string(&encoded[at], &mut text);
            if heads + text.len() > PAYLOAD_LIMIT {
                return String::new();
            }
        }
    }
    text
}

/// Changes of one user an announcement carried: every change in (`after`, `upto`]
/// that is still stored (a version the same batch replaced is not), in `seq` order,
/// each as the announcement has it (base64 of the stored record), decoded only when
/// published ([`cover`]): a node decodes nothing of its own batches or of users it
/// has no channel for.
#[derive(Debug, PartialEq)]
pub(super) struct Span<'a> {
    pub after: Seq,
    pub upto: Seq,
    pub records: Vec<(Seq, &'a str)>,
}

/// The changes in (`from`, `upto`], in `seq` order, if `spans` (announced batches of
/// the same user, in any order) hold them all and they decode.
pub(super) fn cover(
    mut spans: Vec<Span<'_>>,
    from: Seq,
    upto: Seq,
) -> Option<Vec<NotificationRecord>> {
    spans.sort_unstable_by_key(|span| span.after);
    let mut reached = from;
    let mut records = Vec::new();
    for span in spans {
        if reached >= upto {
            break;
        }
        if span.after > reached {
            return None;
        }
        if span.upto > reached {
            for (seq, text) in span.records.into_iter().filter(|(seq, _)| *seq > reached) {
                let mut record: NotificationRecord = decode(&STANDARD.decode(text).ok()?).ok()?;
                record.seq = seq;
                records.push(record);
            }
            reached = span.upto;
        }
    }
    (reached >= upto).then_some(records)
}

/// What a feed notification says: when its batch was committed, each user's new head,
/// and the changes it carried (the text after the heads, read by [`spans`]).
pub(super) struct Announcement<'a> {
    pub at: Timestamp,
    pub heads: Vec<(UserId, Seq)>,
    pub carried: &'a str,
}

/// The carried changes of an announcement whose heads are `heads`, by user; `None`
/// when they cannot be read (the changes are then read from the database).
pub(super) fn spans<'a>(
    carried: &'a str,
    heads: &[(UserId, Seq)],
) -> Option<Vec<(UserId, Span<'a>)>> {
    let heads: HashMap<&UserId, Seq> = heads.iter().map(|(user, seq)| (user, *seq)).collect();
    let mut spans: Vec<(UserId, Span<'a>)> = Vec::new();
    for line in carried.strip_prefix(CARRIED)?.split('\n').skip(1) {
        if let Some(user_line) = line.strip_prefix('@') {
            let (taken, user) = user_line.split_once(' ')?;
            let user = UserId::new(user);
            let upto = *heads.get(&user)?;
            let after = Seq(upto.0.checked_sub(taken.parse().ok()?)?);
            spans.push((
                user,
                Span {
                    after,
                    upto,
                    records: Vec::new(),
                },
            ));
            continue;
        }
        let (_, span) = spans.last_mut()?;
        let (back, record) = line.split_once(' ')?;
        let seq = Seq(span.upto.0.checked_sub(back.parse().ok()?)?);
        if seq <= span.after {
            return None;
        }
        span.records.push((seq, record));
    }
    for (_, span) in &mut spans {
        span.records.sort_unstable_by_key(|(seq, _)| *seq);
    }
    Some(spans)
}

/// A feed notification's time, heads and carried changes. Besides the batch form of
/// [`batch_payload`], the one-change form `"<seq> <committed millis> <user id>"` of
/// earlier versions is read too, so a node follows one that is not upgraded yet.
pub(super) fn parse(payload: &str) -> Option<Announcement<'_>> {
    let (payload, carried) = match payload.find(CARRIED) {
        Some(at) => payload.split_at(at),
        None => (payload, ""),
    };
    let (at, heads) = parse_heads(payload)?;
    Some(Announcement { at, heads, carried })
}

/// `payload` without the changes it carried (kept short while a node is behind).
pub(super) fn without_changes(payload: &mut String) {
    if let Some(at) = payload.find(CARRIED) {
        payload.truncate(at);
    }
}

fn parse_heads(payload: &str) -> Option<(Timestamp, Vec<(UserId, Seq)>)> {
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
    use crate::service::store::fixtures;
    use crate::service::store::records::encode;

    /// A batch that took `a`'s `seq`s 6 to 8 (7 was replaced by 8 in the same batch)
    /// and `b`'s 3.
    fn batch() -> Plan {
        let a = UserId::new("a");
        let b = UserId::new("b");
        let record = |seq, id| fixtures::record(seq, id, None, None, 1_000_000);
        Plan {
            made: Vec::new(),
            rows: vec![
                (a.clone(), record(8, "x")),
                (b.clone(), record(3, "y")),
                (a.clone(), record(6, "z")),
            ],
            heads: BTreeMap::from([(a.clone(), Seq(8)), (b.clone(), Seq(3))]),
            before: BTreeMap::from([(a, Seq(5)), (b, Seq(2))]),
        }
    }

    fn encoded(plan: &Plan) -> Vec<Vec<u8>> {
        plan.rows.iter().map(|(_, r)| encode(r).unwrap()).collect()
    }

    #[test]
    fn a_batchs_changes_ride_in_its_announcement_and_come_back_in_seq_order() {
        let plan = batch();
        let heads = batch_payload(&plan.heads, Timestamp::from_millis(9));
        let text = heads.clone() + &carried(&plan, &encoded(&plan), heads_size(&plan));
        let read = parse(&text).unwrap();
        assert_eq!(
            read.heads,
            vec![(UserId::new("a"), Seq(8)), (UserId::new("b"), Seq(3))]
        );
        let mut spans = spans(read.carried, &read.heads).unwrap();
        let seqs: Vec<(&str, u64, u64, Vec<u64>)> = spans
            .iter()
            .map(|(user, span)| {
                let seqs = span.records.iter().map(|(seq, _)| seq.0).collect();
                (user.as_str(), span.after.0, span.upto.0, seqs)
            })
            .collect();
        assert_eq!(seqs, vec![("a", 5, 8, vec![6, 8]), ("b", 2, 3, vec![3])]);
        let a = spans.remove(0).1;
        let records = cover(vec![a], Seq(5), Seq(8)).unwrap();
        let ids: Vec<(&str, u64)> = records.iter().map(|r| (r.id.as_str(), r.seq.0)).collect();
        assert_eq!(ids, vec![("z", 6), ("x", 8)]);
        let mut short = text.clone();
        without_changes(&mut short);
        assert_eq!(short, heads);
        assert_eq!(parse(&short).unwrap().carried, "");
    }

    #[test]
    fn announced_changes_are_used_only_when_they_cover_all_that_is_missing() {
        let text = STANDARD.encode(encode(&fixtures::record(1, "n", None, None, 1)).unwrap());
        let span = |after, upto, seqs: &[u64]| Span {
            after: Seq(after),
            upto: Seq(upto),
            records: seqs.iter().map(|&seq| (Seq(seq), text.as_str())).collect(),
        };
        let seqs = |records: Option<Vec<NotificationRecord>>| {
            records.map(|r| r.iter().map(|r| r.seq.0).collect::<Vec<_>>())
        };
        let both = || vec![span(5, 8, &[6, 8]), span(2, 5, &[3, 4, 5])];
        assert_eq!(
            seqs(cover(both(), Seq(2), Seq(8))),
            Some(vec![3, 4, 5, 6, 8])
        );
        assert_eq!(seqs(cover(both(), Seq(4), Seq(8))), Some(vec![5, 6, 8]));
        assert_eq!(seqs(cover(both(), Seq(1), Seq(8))), None, "3 and before");
        assert_eq!(seqs(cover(both(), Seq(2), Seq(9))), None, "9");
        assert_eq!(seqs(cover(vec![span(5, 8, &[6])], Seq(2), Seq(8))), None);
        assert_eq!(seqs(cover(Vec::new(), Seq(2), Seq(3))), None);
    }

    #[test]
    fn changes_that_would_not_fit_or_do_not_read_are_not_carried() {
        let plan = batch();
        assert_eq!(carried(&plan, &encoded(&plan), PAYLOAD_LIMIT - 20), "");
        let heads = [(UserId::new("a"), Seq(8))];
        let bad = spans("\n-\n@3 a\n0 !!", &heads).unwrap().remove(0).1;
        assert!(
            cover(vec![bad], Seq(5), Seq(8)).is_none(),
            "not base64: read back"
        );
        assert!(
            spans("\n-\n@9 a", &heads).is_none(),
            "more taken than the head"
        );
        assert!(
            spans("\n-\n@1 b", &heads).is_none(),
            "a user the heads do not name"
        );
        assert!(
            spans("\n-\n0 AAAA", &heads).is_none(),
            "a change before any user"
        );
        let record = STANDARD.encode(encode(&batch().rows[0].1).unwrap());
        assert!(
            spans(&format!("\n-\n@1 a\n1 {record}"), &heads).is_none(),
            "a change outside the batch's seqs"
        );
        assert_eq!(spans("\n-\n@1 a", &heads).unwrap()[0].1.records, vec![]);
    }

    #[test]
    fn payloads_round_trip_and_bad_ones_are_refused() {
        let (a, b) = (UserId::new("a"), UserId::new("b"));
        let heads = BTreeMap::from([(a.clone(), Seq(42)), (b.clone(), Seq(7))]);
        let text = batch_payload(&heads, Timestamp::from_millis(9));
        assert_eq!(text, "9\n42 a\n7 b");
        assert_eq!(
            parse_heads(&text),
            Some((Timestamp::from_millis(9), vec![(a, Seq(42)), (b, Seq(7))]))
        );
        assert_eq!(parse(&text).map(|read| read.carried), Some(""));
        assert!(text.len() <= 1 + heads.keys().map(entry_size).sum::<usize>());
        assert_eq!(parse_heads("9\nx a"), None);
        assert_eq!(parse_heads("9\n1 "), None);
        assert_eq!(parse_heads("x\n1 a"), None);
        assert_eq!(parse_heads(""), None);
    }

    #[test]
    fn the_one_change_payloads_of_earlier_versions_are_read_too() {
        assert_eq!(
            parse_heads("42 7 u 1"),
            Some((
                Timestamp::from_millis(7),
                vec![(UserId::new("u 1"), Seq(42))]
            ))
        );
        assert_eq!(parse_heads("x 1 u"), None);
        assert_eq!(parse_heads("1 2"), None);
        assert_eq!(parse_heads("1 2 "), None);
    }
}
