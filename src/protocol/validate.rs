//! Turning an app's JSON body into a validated [`NotificationContent`].
//!
//! Every rule and limit of the notification resource lives here, so the service routes, the
//! agent's `send` and the CLI all refuse the same things with the same messages.
//! Each error names the offending field.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, de};

use super::enums::{Platform, Priority, ReadState, UserActionState};
use super::notification::{JsonObject, NotificationContent, TargetPolicy};
use super::time::Timestamp;

/// Largest request body accepted, after decompression.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest `targetHostName`, in bytes.
pub const MAX_HOST_BYTES: usize = 253;
/// Longest `appNotificationId` and `groupName`, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 512;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 4096;
/// Largest `rawContent`, in bytes.
pub const MAX_RAW_BYTES: usize = 16 * 1024;
/// Largest `fallbackPolicy`, as compact JSON, in bytes. Graph's fallback policy is one
/// small object (`{"timespanInMinutes": N}`); it has no effect here and is only kept,
/// so a few KiB is plenty, and a large one would only cost every device's disk.
pub const MAX_FALLBACK_POLICY_BYTES: usize = 4 * 1024;
/// Largest `displayTimeToLive`, in seconds (30 days).
pub const MAX_TTL_SECONDS: u64 = 2_592_000;
/// Expiry when none is given.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Latest expiry accepted; later ones are clamped to it.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// The reserved host name of notes a user sends to their own devices.
pub const LOCAL_HOST_NAME: &str = "localhost";

/// A rule a request broke: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field's JSON path, e.g. `payload.visualContent.title`.
    pub field: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of a notification post as sent: lenient types, nothing checked yet.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationInput {
    target_host_name: Option<String>,
    app_notification_id: Option<String>,
    group_name: Option<String>,
    #[serde(default, deserialize_with = "number_or_numeric_string")]
    display_time_to_live: Option<u64>,
    expiration_date_time: Option<String>,
    priority: Option<String>,
    payload: Option<payload::PayloadInput>,
    target_policy: Option<TargetPolicyInput>,
    fallback_policy: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetPolicyInput {
    platform_types: Option<Vec<String>>,
}

/// Accepts `60` or `"60"`.
fn number_or_numeric_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let parsed = match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
        Some(_) => None,
    };
    parsed.map(Some).ok_or_else(|| {
        de::Error::custom("expected a whole number of seconds, as a number or a string")
    })
}

/// Parses JSON bytes into `T`, naming the field that failed.
///
/// The body must be a JSON object (serde would otherwise read a struct from an array).
pub fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ValidationError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ValidationError::new("body", "must be a JSON object"));
    }
    // Read once without tracking the path (tracking copies every key it passes); only
    // a body that fails is read again, with the path, to say where it failed.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ValidationError::new(field, err.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ValidationError::new("body", e.to_string()))?;
    Ok(value)
}

impl NotificationInput {
    /// Parses a request body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        parse_json(bytes)
    }

    /// Sets `targetHostName` when the body left it out (a user's own note, or `send`).
    #[must_use]
    pub fn with_default_host(mut self, host: &str) -> Self {
        if self.target_host_name.is_none() {
            self.target_host_name = Some(host.to_owned());
        }
        self
    }

    /// Checks every rule and fills in defaults, as of `now`.
    pub fn validate(self, now: Timestamp) -> Result<NotificationContent, ValidationError> {
        let target_host_name = normalize_host_name(
            "targetHostName",
            self.target_host_name
                .ok_or_else(|| ValidationError::new("targetHostName", "is required"))?,
        )?;
        let content = NotificationContent {
            target_host_name,
            app_notification_id: self.app_notification_id,
            group_name: self.group_name,
            display_time_to_live: validate_ttl(self.display_time_to_live)?,
            expiration_date_time: validate_expiry(self.expiration_date_time.as_deref(), now)?,
            priority: self
                .priority
                .map(|p| p.parse::<Priority>())
                .transpose()
                .map_err(|e| ValidationError::new("priority", e))?
                .unwrap_or(Priority::None),
            payload: payload::validate_payload(self.payload.unwrap_or_default())?,
            target_policy: validate_target_policy(self.target_policy)?,
            fallback_policy: self.fallback_policy.as_ref().map(JsonObject::from_value),
        };
        check_content(&content)?;
        Ok(content)
    }
}

/// Checks the limits of content that is already typed: what the service accepts from an
/// app, applied again by the agent to what a service sends it (a hostile service must
/// not make an agent store or show more than an app may post). The expiry is not
/// checked here: a stored notification may be expired by the time it is read.
pub fn check_content(content: &NotificationContent) -> Result<(), ValidationError> {
    check_host_name("targetHostName", &content.target_host_name)?;
    if let Some(id) = &content.app_notification_id {
        check_chars("appNotificationId", id, 1, MAX_ID_CHARS, Controls::Refused)?;
    }
    if let Some(group) = &content.group_name {
        check_chars("groupName", group, 0, MAX_ID_CHARS, Controls::Refused)?;
    }
    if let Some(ttl) = content.display_time_to_live {
        validate_ttl(Some(u64::from(ttl)))?;
    }
    payload::check_payload(&content.payload)?;
    if let Some(policy) = &content.fallback_policy
        && policy.len() > MAX_FALLBACK_POLICY_BYTES
    {
        return Err(ValidationError::new(
            "fallbackPolicy",
            format!(
                "must be at most {MAX_FALLBACK_POLICY_BYTES} bytes of JSON, got {}",
                policy.len()
            ),
        ));
    }
    check_platforms(content.target_policy.platform_types.as_deref())
}

/// A platform list names each platform at most once (the service keeps one of each), and
/// is not empty.
fn check_platforms(platforms: Option<&[Platform]>) -> Result<(), ValidationError> {
    let field = "targetPolicy.platformTypes";
    let Some(platforms) = platforms else {
        return Ok(());
    };
    let repeated = platforms.len() > Platform::ALL.len()
        || platforms
            .iter()
            .enumerate()
            .any(|(i, p)| platforms[..i].contains(p));
    if repeated {
        return Err(ValidationError::new(
            field,
            "names a platform more than once",
        ));
    }
    if platforms.is_empty() {
        return Err(ValidationError::new(
            "targetPolicy.platformTypes",
            "is empty, so no device would receive it; leave targetPolicy out to reach every platform",
        ));
    }
    Ok(())
}

/// Whether a text field may hold control characters (titles and bodies may: they are
/// neutralised where shown; ids and group names may not).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Controls {
    Allowed,
    Refused,
}

fn check_chars(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    controls: Controls,
) -> Result<(), ValidationError> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(ValidationError::new(
            field,
            format!("must be {min} to {max} characters, got {count}"),
        ));
    }
    if controls == Controls::Refused
        && let Some(c) = value.chars().find(|c| c.is_control())
    {
        return Err(ValidationError::new(
            field,
            format!(
                "must not contain control characters, found U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// Checks that `value` is a DNS host name and returns it in lower case.
pub fn validate_host_name(field: &str, value: &str) -> Result<String, ValidationError> {
    check_host_name(field, value).map(str::to_ascii_lowercase)
}

/// [`validate_host_name`] of a name already owned: lower-cased in place, no copy.
fn normalize_host_name(field: &str, mut value: String) -> Result<String, ValidationError> {
    let len = check_host_name(field, &value)?.len();
    value.truncate(len);
    value.make_ascii_lowercase();
    Ok(value)
}

/// Checks that `value` is a DNS host name: the name without its trailing dot.
fn check_host_name<'a>(field: &str, value: &'a str) -> Result<&'a str, ValidationError> {
    let bad =
        |why: &str| ValidationError::new(field, format!("{value:?} is not a DNS host name: {why}"));
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.len() > MAX_HOST_BYTES {
        return Err(bad("it is longer than 253 bytes"));
    }
    let host = value.strip_suffix('.').unwrap_or(value);
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with '-'"));
        }
    }
    Ok(host)
}

fn validate_ttl(ttl: Option<u64>) -> Result<Option<u32>, ValidationError> {
    match ttl {
        None => Ok(None),
        Some(seconds) if (1..=MAX_TTL_SECONDS).contains(&seconds) => {
            Ok(u32::try_from(seconds).ok())
        }
        Some(seconds) => Err(ValidationError::new(
            "displayTimeToLive",
            format!("must be 1 to {MAX_TTL_SECONDS} seconds, got {seconds}"),
        )),
    }
}

fn validate_expiry(text: Option<&str>, now: Timestamp) -> Result<Timestamp, ValidationError> {
    let Some(text) = text else {
        return Ok(now.plus(DEFAULT_EXPIRY));
    };
    let at = Timestamp::parse_rfc3339(text)
        .map_err(|e| ValidationError::new("expirationDateTime", format!("{text:?} is {e}")))?;
    if at <= now {
        return Err(ValidationError::new(
            "expirationDateTime",
            format!("{text} is in the past"),
        ));
    }
    Ok(at.min(now.plus(MAX_EXPIRY)))
}

fn validate_target_policy(
    input: Option<TargetPolicyInput>,
) -> Result<TargetPolicy, ValidationError> {
    let Some(types) = input.and_then(|p| p.platform_types) else {
        return Ok(TargetPolicy::default());
    };
    let mut platforms = Vec::with_capacity(types.len());
    for text in types {
        let platform: Platform = text
            .parse()
            .map_err(|e| ValidationError::new("targetPolicy.platformTypes", e))?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    Ok(TargetPolicy {
        platform_types: Some(platforms),
    })
}

/// A device's change to a notification's state (`PATCH` body or channel `update`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatePatch {
    /// New read state.
    pub read_state: Option<ReadState>,
    /// New action state.
    pub user_action_state: Option<UserActionState>,
}

impl StatePatch {
    /// Parses and checks a `PATCH` body: at least one field must be set.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        let patch: StatePatch = parse_json(bytes)?;
        patch.check()
    }

    /// Applies the patch to a state.
    pub fn apply_to(self, state: &mut crate::protocol::UserState) {
        if let Some(read) = self.read_state {
            state.read_state = read;
        }
        if let Some(action) = self.user_action_state {
            state.user_action_state = action;
        }
    }

    /// Refuses an empty patch.
    pub fn check(self) -> Result<Self, ValidationError> {
        if self.read_state.is_none() && self.user_action_state.is_none() {
            return Err(ValidationError::new(
                "body",
                "needs readState, userActionState or both",
            ));
        }
        Ok(self)
    }
}

mod payload;
pub use payload::{entry_field, opened_payload};
#[cfg(test)]
mod tests;
