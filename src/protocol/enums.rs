//! The small string enums of the notification resource.
//!
//! Each one parses case-insensitively (`high`, `HIGH` and `High` are one priority) and is
//! written back in the spelling the Graph API uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Defines a wire enum with a canonical spelling per variant.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(text))
                    .ok_or_else(|| format!("unknown value {text:?}; expected one of {}", Self::expected()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// How urgent a notification is; decides the toast's urgency.
    Priority {
        /// Normal urgency (the default).
        None => "None",
        /// Critical urgency.
        High => "High",
        /// Low urgency, no sound.
        Low => "Low",
    }
);

wire_enum!(
    /// A device platform, for `targetPolicy.platformTypes`.
    Platform {
        /// Windows.
        Windows => "windows",
        /// Linux.
        Linux => "linux",
        /// macOS.
        MacOs => "macOS",
        /// iOS.
        Ios => "iOS",
        /// Android.
        Android => "android",
        /// A browser with web push.
        WebPush => "webPush",
    }
);

wire_enum!(
    /// Whether the user has read a notification.
    ReadState {
        /// Not read yet (the state of every new notification).
        Unread => "unread",
        /// Read on some device.
        Read => "read",
    }
);

wire_enum!(
    /// What the user did with a notification.
    UserActionState {
        /// Nothing yet.
        NoInteraction => "noInteraction",
        /// Clicked / opened.
        Activated => "activated",
        /// Dismissed (universal dismiss).
        Dismissed => "dismissed",
        /// Snoozed.
        Snoozed => "snoozed",
    }
);

wire_enum!(
    /// Whether a notification exists or is a tombstone.
    Status {
        /// A live notification.
        Active => "active",
        /// Deleted: kept as a tombstone until expiry so devices learn of the delete.
        Deleted => "deleted",
    }
);

impl Platform {
    /// The platform this binary runs on, as a device reports it at sign-in.
    pub fn current() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(target_os = "android") {
            Platform::Android
        } else if cfg!(target_os = "ios") {
            Platform::Ios
        } else {
            Platform::Linux
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_ignores_case_and_writes_back_canonically() {
        assert_eq!("HIGH".parse::<Priority>().unwrap(), Priority::High);
        assert_eq!("macos".parse::<Platform>().unwrap(), Platform::MacOs);
        assert_eq!(Platform::MacOs.to_string(), "macOS");
        assert_eq!(
            serde_json::to_string(&UserActionState::NoInteraction).unwrap(),
            "\"noInteraction\""
        );
    }

    #[test]
    fn unknown_values_list_what_is_accepted() {
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert!(err.contains("None, High, Low"), "{err}");
    }
}
