//! Shared test helpers: a real service on 127.0.0.1:0 with its store in a temp dir,
//! users / apps / devices made through the real admin socket and HTTP API, and a
//! WebSocket channel client. No test sleeps for a fixed time and hopes: waits are on
//! events or on a condition polled every few milliseconds, always with a deadline (the
//! short sleeps below are those polls, and the retry of a port still in use).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tidings::ipc::Client;
use tidings::protocol::{Notification, Seq, ServerFrame};
use tidings::service::{self, ServiceState, Settings, State};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

/// Longest any single wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running in-process service.
pub struct TestService {
    pub url: String,
    pub state: State,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), service::ServiceError>>,
    pub http: reqwest::Client,
}

/// Settings for tests: short ping and purge intervals.
pub fn test_settings(dir: PathBuf) -> Settings {
    let mut settings = Settings::new(dir);
    settings.cache_bytes = 8 << 20;
    settings.purge_interval = Duration::from_millis(100);
    // Load and chaos tests post faster than an app's default rate; the post-rate test
    // sets its own.
    settings.posts.rate = 1e9;
    settings.posts.burst = 1e9;
    settings
}

impl TestService {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Settings)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), tune).await
    }

    /// Stops the service and starts a new one on the same store.
    pub async fn restart(self) -> Self {
        let dir = self.stop().await;
        Self::start_in(dir, |_| {}).await
    }

    /// Stops the service and starts a new one on the same store and the same port.
    pub async fn restart_on_same_port(self) -> Self {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let dir = self.stop().await;
        Self::start_at(dir, &addr, |_| {}).await
    }

    /// Starts a service on the store in `dir` (from `stop`), listening on `url`'s port.
    pub async fn resume(dir: tempfile::TempDir, url: &str) -> Self {
        Self::start_at(dir, url.trim_start_matches("http://"), |_| {}).await
    }

    async fn start_in(dir: tempfile::TempDir, tune: impl FnOnce(&mut Settings)) -> Self {
        let port = free_port_outside_ephemeral_range().await;
        Self::start_at(dir, &format!("127.0.0.1:{port}"), tune).await
    }

    /// Listens on `addr`; a port given again (a restart) may be briefly in use still, so
    /// binding is retried up to the deadline.
    async fn start_at(
        dir: tempfile::TempDir,
        addr: &str,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = test_settings(dir.path().join("service"));
        settings.database = crate::pg::database_for(dir.path());
        tune(&mut settings);
        let state = Self::open_state(settings).await;
        let listener = retried(addr, || TcpListener::bind(addr), |_| true)
            .await
            .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service::run(listener, state.clone(), shutdown.clone()));
        let service = Self {
            url,
            state,
            dir,
            shutdown,
            task,
            http: http_client(),
        };
        service.wait_for_admin().await;
        service
    }

    /// Opens the service's state. A sled store that a stopped service just let go of can
    /// stay locked for a moment while sled's own background threads finish with it, so
    /// on a restart `Locked` is retried up to the deadline.
    async fn open_state(settings: Settings) -> State {
        let locked = |e: &service::ServiceError| {
            matches!(
                e,
                service::ServiceError::Store(service::store::StoreError::Locked(_))
            )
        };
        retried(
            "the service's store",
            || ServiceState::open(settings.clone()),
            locked,
        )
        .await
        .unwrap()
    }

    async fn wait_for_admin(&self) {
        let path = self.state.settings.admin_socket_path();
        wait_until("the admin socket is bound", || {
            let path = path.clone();
            async move { Client::connect(&path).await.is_ok() }
        })
        .await;
    }

    /// Calls an admin method over the real admin socket.
    pub async fn admin(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, tidings::ipc::ClientError> {
        let mut client = Client::connect(&self.state.settings.admin_socket_path()).await?;
        client.call(method, params).await
    }

    pub async fn add_user(&self, name: &str) -> String {
        let result = self
            .admin(
                "user.add",
                json!({"name": name, "password": format!("{name}-pw")}),
            )
            .await
            .unwrap();
        result["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_app(&self, host: &str) -> App {
        let created = self
            .admin("app.add", json!({"hostname": host}))
            .await
            .unwrap();
        app_token(&self.http, &self.url, &created).await
    }

    /// Signs a device in for `user` (password grant) on `platform`.
    pub async fn sign_in(&self, user: &str, platform: &str) -> Device {
        sign_in_at(&self.http, &self.url, user, platform).await
    }

    /// The usual cast: user alice, app contoso.com, and alice's linux device subscribed
    /// to it. Returns the app, the device and its UNSID.
    pub async fn alice_and_contoso(&self) -> (App, Device, String) {
        self.add_user("alice").await;
        let app = self.add_app("contoso.com").await;
        let device = self.sign_in("alice", "linux").await;
        let unsid = device.subscribe("contoso.com").await;
        (app, device, unsid)
    }

    /// A request to `url` as `app`, for the user of `unsid`.
    pub fn as_app(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
        app: &App,
        unsid: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&app.token)
            .header("X-UNS-ID", unsid)
    }

    /// Posts a notification as `app` to `unsid`.
    pub async fn post(&self, app: &App, unsid: &str, body: &Value) -> reqwest::Response {
        let url = format!("{}/beta/me/notifications", self.url);
        self.as_app(reqwest::Method::POST, url, app, unsid)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts and expects 201; returns the resource.
    pub async fn post_ok(&self, app: &App, unsid: &str, body: &Value) -> Notification {
        let response = self.post(app, unsid, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 201, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The admin socket's view of one device.
    pub async fn device_info(&self, id: &str) -> Value {
        let list = self.admin("device.list", json!({})).await.unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
            .unwrap()
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        // Every task of the store (PostgreSQL's listener, batch lanes, ack writer) has
        // stopped with the service.
        assert!(
            self.state.store_tasks.tracker.is_empty(),
            "{} store tasks still run after the service stopped",
            self.state.store_tasks.tracker.len()
        );
        self.dir
    }
}

/// An app backend with a token.
pub struct App {
    pub client_id: String,
    pub token: String,
}

/// A signed-in device.
pub struct Device {
    pub url: String,
    pub id: String,
    pub token: String,
    pub refresh: String,
    pub http: reqwest::Client,
}

impl Device {
    /// Posts a note from the user to all of their devices (`POST /v1/me/notifications`).
    pub async fn post_note(&self, title: &str) {
        let answer = self
            .http
            .post(format!("{}/v1/me/notifications", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"payload": {"visualContent": {"title": title}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    }

    /// Subscribes to `host` and returns the UNSID.
    pub async fn subscribe(&self, host: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v1/me/subscriptions", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"targetHostName": host}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Opens the push channel from `cursor`.
    pub async fn channel(&self, cursor: u64) -> Channel {
        let ws_url = format!(
            "{}/v1/me/channel?cursor={cursor}",
            self.url.replacen("http", "ws", 1)
        );
        let mut request = ws_url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Channel { socket }
    }

    /// The whole feed, page after page: `seq` → notification id.
    pub async fn whole_feed(&self) -> std::collections::BTreeMap<u64, String> {
        let mut stored = std::collections::BTreeMap::new();
        let mut since = 0;
        loop {
            let page = self.feed(since).await;
            let Some(last) = page.last() else {
                return stored;
            };
            since = last["seq"].as_u64().unwrap();
            for item in &page {
                let id = item["id"].as_str().unwrap().to_owned();
                stored.insert(item["seq"].as_u64().unwrap(), id);
            }
        }
    }

    /// One page of the JSON feed after `since` (up to 1,000 items or 1 MiB).
    pub async fn feed(&self, since: u64) -> Vec<Value> {
        let path = format!("/v1/me/notifications?since={since}&top=1000");
        let body = self.get_json(&path).await;
        body["value"].as_array().unwrap().clone()
    }

    /// Marks notification `id` read with this device's token; must answer 200.
    pub async fn mark_read(&self, id: &str) {
        let patched = self
            .http
            .patch(format!("{}/v1/me/notifications/{id}", self.url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"readState": "read"}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);
    }

    /// `GET path` with this device's token; must answer 200. Returns the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A device's open channel.
pub struct Channel {
    pub socket: Socket,
}

/// What a channel read produced.
#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

impl Channel {
    /// The next frame or close, within the deadline.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.socket.next())
                .await
                .expect("no frame within the deadline");
            match message {
                None => return Event::Closed(None),
                Some(Err(e)) => {
                    eprintln!("channel error: {e}");
                    return Event::Closed(None);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Event::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Text(text))) => {
                    return Event::Frame(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame; panics on close.
    pub async fn next_frame(&mut self) -> ServerFrame {
        match self.next_event().await {
            Event::Frame(frame) => frame,
            Event::Closed(code) => panic!("channel closed ({code:?}) while a frame was expected"),
        }
    }

    /// Reads until `synced`, returning the changes before it.
    pub async fn until_synced(&mut self) -> (Vec<(Seq, Notification)>, Seq) {
        let mut changes = Vec::new();
        loop {
            match self.next_frame().await {
                ServerFrame::Change { seq, notification } => changes.push((seq, notification)),
                ServerFrame::Synced { seq } => return (changes, seq),
                other @ ServerFrame::Result { .. } => {
                    panic!("unexpected frame before synced: {other:?}")
                }
            }
        }
    }

    /// The next `change` frame (skipping results).
    pub async fn next_change(&mut self) -> (Seq, Notification) {
        loop {
            if let ServerFrame::Change { seq, notification } = self.next_frame().await {
                return (seq, notification);
            }
        }
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }
}

/// Gets an app token (client credentials) for the app `app.add` answered with.
pub async fn app_token(http: &reqwest::Client, url: &str, created: &Value) -> App {
    let client_id = created["clientId"].as_str().unwrap().to_owned();
    let response = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", created["clientSecret"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    App {
        client_id,
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// Signs a device of `user` (whose password is `<user>-pw`) in on `platform`.
pub async fn sign_in_at(http: &reqwest::Client, url: &str, user: &str, platform: &str) -> Device {
    let response = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", &format!("{user}-pw")),
            ("device_name", &format!("{user}-{platform}")),
            ("platform", platform),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    Device {
        url: url.to_owned(),
        id: body["device_id"].as_str().unwrap().to_owned(),
        token: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        http: http.clone(),
    }
}

/// A minimal valid notification body for `host`.
pub fn note(host: &str, title: &str) -> Value {
    json!({
        "targetHostName": host,
        "payload": {"visualContent": {"title": title, "body": "body"}}
    })
}

/// Opens an agent's store that a stopped agent just let go of. As with the service's
/// (`TestService::open_state`), sled's own background threads can hold its files for a
/// moment after the last handle goes, so `AlreadyRunning` is retried up to the
/// deadline. (An agent process that exits lets go at once: the tests that run the
/// binary open its store directly.)
pub async fn reopen_agent_store(dir: &std::path::Path) -> tidings::agent::store::AgentStore {
    use tidings::agent::store::{AgentStore, AgentStoreError};
    let locked = |e: &AgentStoreError| matches!(e, AgentStoreError::AlreadyRunning(_));
    retried(
        "the agent's store",
        || async { AgentStore::open(dir, 1 << 20) },
        locked,
    )
    .await
    .unwrap()
}

/// `attempt` until it succeeds, or fails other than as `passing` says a moment can mend
/// (a port still taken, a store still locked), or [`DEADLINE`] passes; polled every
/// 20 ms.
async fn retried<T, E, Fut>(
    what: &str,
    mut attempt: impl FnMut() -> Fut,
    passing: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let started = tokio::time::Instant::now();
    loop {
        match attempt().await {
            Err(e) if passing(&e) && started.elapsed() < DEADLINE => {
                tracing::debug!(error = %e, what, "not yet; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            done => return done,
        }
    }
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(2);
    while !condition().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// An HTTP client for tests (with ring installed as the TLS provider, as `main` does).
pub fn http_client() -> reqwest::Client {
    tidings::agent::tls::install_provider();
    reqwest::Client::new()
}

/// The body of a plain `GET url`.
pub async fn get_text(url: &str) -> String {
    let response = http_client().get(url).send().await.unwrap();
    response.text().await.unwrap()
}

/// Posts a notification titled `title` for contoso.com as an app (token) to `unsid`,
/// checks the 201 and returns the resource.
pub async fn post_as_app(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    unsid: &str,
    title: &str,
) -> Value {
    let response = try_post_as_app(http, url, token, unsid, title)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Posts a contoso.com note titled `title` as the app; the answer, whatever it is.
pub async fn try_post_as_app(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    unsid: &str,
    title: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/beta/me/notifications"))
        .bearer_auth(token)
        .header("X-UNS-ID", unsid)
        .json(&note("contoso.com", title))
        .send()
        .await
}

/// A fresh access token for a device's refresh token, and the refresh token that
/// replaces it (the old one must not be used again: that revokes the device).
pub async fn refresh_access_token(
    http: &reqwest::Client,
    url: &str,
    refresh: &str,
) -> (String, String) {
    let body: Value = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A free loopback port below the kernel's ephemeral range (32768 and up), so that an
/// outgoing connection of another test can never take it while a service restarts on
/// it. Each test process walks its own stretch of ports.
async fn free_port_outside_ephemeral_range() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let stretch = u16::try_from(std::process::id() % 40).unwrap() * 300;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(n < 300, "no free test port in this process's stretch");
        let port = 20_000 + stretch + n;
        if TcpListener::bind(("127.0.0.1", port)).await.is_ok() {
            return port;
        }
    }
}
