//! The agent in-process, started the one way every test starts it: [`TestAgent`], with a
//! [`Recorder`] standing in for the desktop (it records what the agent asks to show,
//! summarise and close; `desktop.rs` has the real desktop).

use std::path::Path;
use std::sync::{Arc, Mutex};

use tidings::agent::credentials::Credentials;
use tidings::agent::toast::Presenter;
use tidings::agent::{Agent, AgentError, AgentHandle, Settings};
use tidings::protocol::{Notification, NotificationId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::Device;

/// Records what the agent asked the desktop to do.
#[derive(Default)]
pub struct Recorder {
    pub shown: Mutex<Vec<NotificationId>>,
    /// Notifications announced in backlog summaries.
    pub summarised: Mutex<usize>,
    pub closed: Mutex<Vec<NotificationId>>,
}

impl Presenter for Recorder {
    fn show(&self, notification: &Notification) {
        self.shown.lock().unwrap().push(notification.id.clone());
    }

    fn close(&self, id: &NotificationId) {
        self.closed.lock().unwrap().push(id.clone());
    }

    fn summary(&self, count: usize) {
        *self.summarised.lock().unwrap() += count;
    }

    fn is_shown(&self, id: &NotificationId) -> bool {
        self.shown.lock().unwrap().contains(id) && !self.closed.lock().unwrap().contains(id)
    }
}

impl Recorder {
    /// Toasts shown one by one.
    pub fn shown(&self) -> usize {
        self.shown.lock().unwrap().len()
    }

    /// Toasts shown one by one plus notifications announced in summaries.
    pub fn presented(&self) -> usize {
        self.shown() + *self.summarised.lock().unwrap()
    }
}

/// An agent running in-process.
pub struct TestAgent {
    pub recorder: Arc<Recorder>,
    pub handle: AgentHandle,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), AgentError>>,
}

impl TestAgent {
    /// `device`'s agent against `url`, its data in `dir`.
    pub fn start(url: &str, device: &Device, dir: &Path) -> Self {
        Self::start_with(url, device, dir, |_| {})
    }

    /// The same, with `tune` applied to the settings. The credential is kept in `dir`
    /// as `tidings login` would keep it: the agent saves each refresh token that
    /// replaces it there, so a restarted agent presents the newest.
    pub fn start_with(
        url: &str,
        device: &Device,
        dir: &Path,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        let creds = Credentials::load(dir).unwrap().unwrap_or_else(|| {
            let creds = Credentials {
                service: Some(url.to_owned()),
                user: "alice".to_owned(),
                device_id: device.id.clone(),
                refresh_token: device.refresh.clone(),
                ca_file: None,
            };
            creds.save(dir).unwrap();
            creds
        });
        let mut settings = Settings::new(url, creds.refresh_token, dir.to_owned());
        tune(&mut settings);
        Self::launch(settings)
    }

    /// An agent with exactly these settings.
    pub fn launch(settings: Settings) -> Self {
        let recorder = Arc::new(Recorder::default());
        let agent = Agent::open(settings, recorder.clone()).unwrap();
        let handle = agent.handle();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(agent.run(shutdown.clone()));
        Self {
            recorder,
            handle,
            shutdown,
            task,
        }
    }

    /// Waits for the agent to end by itself (e.g. signed out), within the deadline.
    pub async fn ended(self) -> Result<(), AgentError> {
        tokio::time::timeout(crate::helpers::DEADLINE, self.task)
            .await
            .expect("the agent ends by itself")
            .unwrap()
    }

    /// Stops the agent and waits for it; it must end cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}
