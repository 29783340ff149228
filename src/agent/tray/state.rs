//! The panel icon's side in the agent, whatever the panel: the icon's [`State`] read
//! from the agent (the unread tally, the newest unread, the link, do-not-disturb, the
//! paused apps), and what each clicked [`Action`] does, through the same paths as a
//! toast click, `tidings read`, `tidings dnd` and Ctrl-C.

use tokio_util::sync::CancellationToken;

use crate::protocol::local::Dnd;
use crate::protocol::{ReadState, StatePatch, Status, Timestamp};

use super::super::AgentHandle;
use super::super::store::{Filter, LocalChange};
use super::super::toast::Feedback;
use super::menu::{Action, DndLength, NEWEST, Quiet, State, Unread};

/// What the icon shows now.
pub fn state(handle: &AgentHandle, now: Timestamp) -> State {
    let store = handle.store();
    let unread = store
        .tally()
        .map_or(0, |t| usize::try_from(t.unread).unwrap_or(usize::MAX));
    // Walks back only as far as the last of them.
    let newest = store
        .newest(&unread_filter(), unread.min(NEWEST))
        .unwrap_or_default();
    State {
        link: handle.link().get().0,
        service: host_of(&handle.service_url()),
        unread,
        newest: newest
            .into_iter()
            .map(|record| Unread {
                id: record.id,
                title: record.content.payload.visual_content.map(|v| v.title),
                app: record.content.target_host_name,
            })
            .collect(),
        dnd: quiet(handle.dnd(now).unwrap_or_default()),
        paused: store.paused_apps().unwrap_or_default(),
    }
}

/// Carries out a click; `quit` stops the agent.
pub async fn act(handle: &AgentHandle, action: Action, quit: &CancellationToken) {
    let now = Timestamp::now();
    let done = match action {
        Action::Open(id) => {
            handle.feedback(Feedback::Activated(id)).await;
            Ok(())
        }
        Action::MarkAllRead => mark_all_read(handle).await,
        Action::OpenInbox => open_inbox(handle),
        Action::DndOn(DndLength::Minutes(minutes)) => {
            let until = now.plus(std::time::Duration::from_secs(u64::from(minutes) * 60));
            handle.set_dnd(true, Some(until)).await.map_err(Into::into)
        }
        Action::DndOn(DndLength::UntilOff) => handle.set_dnd(true, None).await.map_err(Into::into),
        Action::DndOff => handle.set_dnd(false, None).await.map_err(Into::into),
        Action::PauseApp(host) => handle.set_paused(&host, true).await.map_err(Into::into),
        Action::ResumeApp(host) => handle.set_paused(&host, false).await.map_err(Into::into),
        Action::Quit => {
            tracing::info!("quit from the panel icon's menu");
            quit.cancel();
            Ok(())
        }
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "the panel icon's menu could not do what was clicked");
    }
}

/// Active and unread: what the tally counts as unread.
fn unread_filter() -> Filter {
    Filter {
        app: None,
        unread_only: true,
        status: Some(Status::Active),
    }
}

async fn mark_all_read(handle: &AgentHandle) -> Result<(), super::super::AgentError> {
    let ids: Vec<_> = handle
        .store()
        .newest(&unread_filter(), usize::MAX)?
        .into_iter()
        .map(|record| record.id)
        .collect();
    let read = LocalChange::Update(StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: None,
    });
    let changed = handle.change(&ids, read).await?;
    tracing::info!(changed, "marked all read from the panel icon");
    Ok(())
}

/// Opens the service's web app in the user's browser (its sign-in page, when the
/// browser holds no session).
fn open_inbox(handle: &AgentHandle) -> Result<(), super::super::AgentError> {
    let url = format!("{}/", handle.service_url().trim_end_matches('/'));
    open::that_detached(&url).map_err(|e| {
        super::super::AgentError::Config(format!(
            "cannot open {url} in a browser: {e}; open it by hand"
        ))
    })
}

/// Do-not-disturb as the icon words it, the end in local time.
fn quiet(dnd: Dnd) -> Quiet {
    match (dnd.on, dnd.until) {
        (false, _) => Quiet::Off,
        (true, None) => Quiet::On,
        (true, Some(until)) => Quiet::Until(local_time(until)),
    }
}

/// `14:30`, in the system's time zone.
fn local_time(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at.as_millis())
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// The host of a service URL, as the tooltip names it.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tooltip_names_the_host_and_times_are_local_hours_and_minutes() {
        assert_eq!(
            host_of("https://notify.example.com:8443/"),
            "notify.example.com"
        );
        assert_eq!(host_of("http://127.0.0.1:7319"), "127.0.0.1");
        assert_eq!(host_of("not a url"), "not a url");
        let time = local_time(Timestamp::now());
        assert_eq!(time.len(), 5, "{time}");
        assert_eq!(&time[2..3], ":");
        assert_eq!(quiet(Dnd::default()), Quiet::Off);
        let on = Dnd {
            on: true,
            until: None,
        };
        assert_eq!(quiet(on), Quiet::On);
    }
}
