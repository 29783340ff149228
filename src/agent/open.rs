//! Encrypted content opened on receipt (`docs/encryption.md`): a notification that
//! carries entries for the user's devices is opened with the keys of this device's
//! subscription to its app, and stored with the cleartext in place (its
//! `encryptedContent` then empty, so everything local shows it and `--json` says it
//! arrived encrypted). One with no entry for this device is stored as it came, never
//! shown; one whose entry cannot be opened (tampered, truncated, made for other keys,
//! or not a payload) is the same, with a warning, and counted for `status`.

use crate::protocol::sealed::Keyring;
use crate::protocol::{Notification, Payload};

/// What opening a notification did.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// It carried no encrypted content.
    Plain,
    /// Its entry for this device was opened.
    Opened,
    /// It holds no entry for this device.
    ForAnotherDevice,
    /// Its entry for this device could not be opened: why.
    Failed(String),
}

/// Opens `notification`'s entry for this device, in place.
pub fn open(notification: &mut Notification, keyring: &Keyring) -> Opening {
    let host = &notification.content.target_host_name;
    let payload = &mut notification.content.payload;
    let Some(entries) = payload.encrypted_content.as_ref().filter(|e| !e.is_empty()) else {
        return Opening::Plain;
    };
    let mine = entries.iter().find_map(|entry| {
        keyring
            .get(&entry.unsid)
            .filter(|(of, _)| of == host)
            .map(|(_, keys)| (entry, keys))
    });
    let Some((entry, keys)) = mine else {
        return Opening::ForAnotherDevice;
    };
    let opened = keys
        .open(&entry.content)
        .map_err(|e| e.to_string())
        .and_then(|cleartext| {
            crate::protocol::validate::opened_payload(&cleartext).map_err(|e| e.to_string())
        });
    match opened {
        Ok(clear) => {
            *payload = Payload {
                encrypted_content: Some(Vec::new()),
                ..clear
            };
            Opening::Opened
        }
        Err(why) => Opening::Failed(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Unsid;
    use crate::protocol::sealed::{DeviceKeys, SealedContent};
    use crate::protocol::{NotificationInput, Timestamp};

    fn sealed_for(entries: Vec<SealedContent>) -> Notification {
        let body = br#"{"targetHostName":"contoso.com","payload":{"rawContent":"x"}}"#;
        let mut content = NotificationInput::from_json(body)
            .unwrap()
            .validate(Timestamp::now())
            .unwrap();
        content.payload = Payload {
            visual_content: None,
            raw_content: None,
            encrypted_content: Some(entries),
        };
        Notification {
            id: crate::protocol::NotificationId::new("n"),
            content,
            created_date_time: Timestamp::now(),
            last_modified_date_time: Timestamp::now(),
            state: crate::protocol::UserState::FRESH,
        }
    }

    fn entry(unsid: &str, keys: &DeviceKeys, cleartext: &str) -> SealedContent {
        SealedContent {
            unsid: Unsid::new(unsid),
            content: keys.public().seal(cleartext.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn each_device_opens_its_own_entry_and_only_for_its_app() {
        let (mine, theirs) = (
            DeviceKeys::generate().unwrap(),
            DeviceKeys::generate().unwrap(),
        );
        let keyring: Keyring = [(Unsid::new("u1"), ("contoso.com".to_owned(), mine.clone()))]
            .into_iter()
            .collect();
        let title = r#"{"visualContent":{"title":"secret","body":"b"},"rawContent":"r"}"#;
        let mut both = sealed_for(vec![entry("u2", &theirs, title), entry("u1", &mine, title)]);
        assert_eq!(open(&mut both, &keyring), Opening::Opened);
        let payload = &both.content.payload;
        assert_eq!(payload.visual_content.as_ref().unwrap().title, "secret");
        assert_eq!(payload.raw_content.as_deref(), Some("r"));
        assert!(payload.is_encrypted() && !payload.is_sealed());

        let mut other = sealed_for(vec![entry("u2", &theirs, title)]);
        assert_eq!(open(&mut other, &keyring), Opening::ForAnotherDevice);
        assert!(other.content.payload.is_sealed());

        // The entry is this device's, but the notification is another app's.
        let mut moved = sealed_for(vec![entry("u1", &mine, title)]);
        moved.content.target_host_name = "fabrikam.com".into();
        assert_eq!(open(&mut moved, &keyring), Opening::ForAnotherDevice);
    }

    #[test]
    fn what_cannot_be_opened_stays_sealed_and_says_why() {
        let mine = DeviceKeys::generate().unwrap();
        let keyring: Keyring = [(Unsid::new("u1"), ("contoso.com".to_owned(), mine.clone()))]
            .into_iter()
            .collect();
        let other_keys = DeviceKeys::generate().unwrap();
        let cases = [
            entry("u1", &other_keys, r#"{"visualContent":{"title":"t"}}"#),
            entry("u1", &mine, "not json"),
            entry("u1", &mine, r#"{"visualContent":{"title":""}}"#),
            entry("u1", &mine, "{}"),
            entry("u1", &mine, r#"{"encryptedContent":[]}"#),
        ];
        for case in cases {
            let mut notification = sealed_for(vec![case]);
            let before = notification.clone();
            assert!(matches!(
                open(&mut notification, &keyring),
                Opening::Failed(_)
            ));
            assert_eq!(notification, before);
        }
    }
}
