//! The WinRT and registry calls of the Windows presenter (`winrt.rs`), each small and
//! on its own: a toast from its XML, tagged; what an activation or a setting means;
//! WinRT dates; the toasts a previous agent left in the notification centre; and
//! tidings' app id named and given its icon for this user.

use windows::Data::Xml::Dom::XmlDocument;
use windows::Foundation::{DateTime, IReference, PropertyValue};
use windows::UI::Notifications::{
    NotificationSetting, ToastActivatedEventArgs, ToastNotification, ToastNotificationManager,
};
use windows::core::{HSTRING, IInspectable, Interface, Ref};

use super::winrt::{APP_ID, GROUP};
use crate::protocol::{NotificationId, Timestamp};

/// Milliseconds from 1601-01-01 (WinRT's epoch) to 1970-01-01.
const WINRT_EPOCH_OFFSET_MS: i64 = 11_644_473_600_000;

/// A WinRT error as people read it: Windows' message and the HRESULT (the message
/// alone can be empty).
pub(super) fn error_text(error: &windows::core::Error) -> String {
    let code = format!("HRESULT {:#010X}", error.code().0);
    match error.message().trim() {
        "" => code,
        message => format!("{message} ({code})"),
    }
}

/// A toast from its XML, tagged `tag` in `group`.
pub(super) fn toast(xml: &str, tag: &str, group: &str) -> windows::core::Result<ToastNotification> {
    let document = XmlDocument::new()?;
    document.LoadXml(&HSTRING::from(xml))?;
    let toast = ToastNotification::CreateToastNotification(&document)?;
    toast.SetTag(&HSTRING::from(tag))?;
    toast.SetGroup(&HSTRING::from(group))?;
    Ok(toast)
}

/// The argument of a toast's activation: the button's, or the toast's `launch`.
pub(super) fn activation_argument(args: &Ref<IInspectable>) -> Option<String> {
    let args = args.as_ref()?.cast::<ToastActivatedEventArgs>().ok()?;
    args.Arguments().ok().map(|a| a.to_string())
}

/// Why toasts are off for tidings, if they are.
pub(super) fn setting_problem(setting: NotificationSetting) -> Option<String> {
    let why = match setting {
        NotificationSetting::Enabled => return None,
        NotificationSetting::DisabledForUser => {
            "notifications are turned off in Settings > System > Notifications"
        }
        NotificationSetting::DisabledForApplication => {
            "notifications from tidings are turned off in Settings > System > Notifications"
        }
        NotificationSetting::DisabledByGroupPolicy => {
            "notifications are turned off by group policy"
        }
        _ => "Windows does not allow notifications for tidings",
    };
    Some(why.to_owned())
}

/// `at` as a WinRT `DateTime` (100 ns ticks since 1601).
pub(super) fn winrt_date(at: Timestamp) -> windows::core::Result<IReference<DateTime>> {
    let ticks = at
        .as_millis()
        .saturating_add(WINRT_EPOCH_OFFSET_MS)
        .saturating_mul(10_000);
    PropertyValue::CreateDateTime(DateTime {
        UniversalTime: ticks,
    })?
    .cast()
}

/// The notifications whose toasts a previous agent left in the notification centre.
pub(super) fn history() -> windows::core::Result<Vec<NotificationId>> {
    let toasts = ToastNotificationManager::History()?.GetHistoryWithId(&HSTRING::from(APP_ID))?;
    let mut ids = Vec::new();
    for toast in toasts {
        if toast.Group()? == GROUP {
            ids.push(NotificationId::new(toast.Tag()?.to_string()));
        }
    }
    Ok(ids)
}

/// tidings' icon (256 px, rendered from `packaging/linux/tidings.svg`), for the toasts.
const ICON: &[u8] = include_bytes!("../../../packaging/windows/tidings.png");

/// Names [`APP_ID`] "tidings" for this user, with tidings' icon (written to the
/// agent's directory, so toasts have it without an installer).
pub(super) fn register_app_id() -> windows::core::Result<()> {
    let key = windows_registry::CURRENT_USER
        .create(format!(r"Software\Classes\AppUserModelId\{APP_ID}"))?;
    key.set_string("DisplayName", "tidings")?;
    match write_icon() {
        Ok(icon) => key.set_string("IconUri", icon.to_string_lossy().as_ref())?,
        Err(e) => tracing::debug!(error = %e, "could not write the toast icon"),
    }
    Ok(())
}

/// Writes [`ICON`] to `<agent dir>\tidings.png` unless it is there already.
fn write_icon() -> std::io::Result<std::path::PathBuf> {
    let dir = crate::config::agent_data_dir().map_err(std::io::Error::other)?;
    let path = dir.join("tidings.png");
    if std::fs::read(&path).ok().as_deref() != Some(ICON) {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, ICON)?;
    }
    Ok(path)
}
