//! The web app's session over real HTTP: a browser signs in as a `webPush` device, its
//! tokens travel only in `HttpOnly`, `SameSite=Strict` cookies, a cookie counts only for
//! a same-origin request, the refresh rotates both, and signing out revokes the device.
//! (Requests are made as a browser would make them: `Origin`, `User-Agent`, `Cookie`.)

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE, USER_AGENT};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestService, note};

const CHROMIUM: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";

/// A browser's cookie jar for one service, kept by hand so the tests see every header.
struct Browser {
    url: String,
    origin: String,
    http: reqwest::Client,
    access: Option<String>,
    refresh: Option<String>,
}

impl Browser {
    fn new(service: &TestService) -> Self {
        Self {
            url: service.url.clone(),
            origin: service.url.clone(),
            http: service.http.clone(),
            access: None,
            refresh: None,
        }
    }

    /// A request with this page's `Origin` and the cookies a browser would send to `path`.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut cookies = Vec::new();
        if let Some(access) = &self.access {
            cookies.push(format!("tidings_access={access}"));
        }
        if let (Some(refresh), true) = (&self.refresh, path == "/web/session/refresh") {
            cookies.push(format!("tidings_refresh={refresh}"));
        }
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header(ORIGIN, &self.origin)
            .header(USER_AGENT, CHROMIUM);
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies.join("; "));
        }
        request
    }

    /// Keeps the cookies a response sets (an empty value clears one).
    fn keep(&mut self, response: &Response) -> Vec<String> {
        let set: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &set {
            let (pair, _) = line.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let value = (!value.is_empty()).then(|| value.to_owned());
            match name {
                "tidings_access" => self.access = value,
                "tidings_refresh" => self.refresh = value,
                other => panic!("unexpected cookie {other}"),
            }
        }
        set
    }

    async fn sign_in(&mut self, user: &str, password: &str) -> (u16, Value, Vec<String>) {
        let response = self
            .request(Method::POST, "/web/session")
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        let set = self.keep(&response);
        let status = response.status().as_u16();
        (status, response.json().await.unwrap(), set)
    }
}

#[tokio::test]
async fn a_browser_signs_in_as_a_web_device_with_its_tokens_only_in_strict_http_only_cookies() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let mut browser = Browser::new(&service);

    let (status, body, set) = browser.sign_in("alice", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "invalid user name or password");
    assert!(set.is_empty(), "{set:?}");

    let (status, body, set) = browser.sign_in("alice", "alice-pw").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userName"], "alice");
    assert_eq!(body["deviceName"], "Chrome on Linux");
    let text = body.to_string();
    let (access, refresh) = (
        browser.access.clone().unwrap(),
        browser.refresh.clone().unwrap(),
    );
    assert!(
        !text.contains(&access) && !text.contains(&refresh),
        "no token in the body: {text}"
    );
    assert_eq!(set.len(), 2, "{set:?}");
    for line in &set {
        assert!(
            line.contains("; HttpOnly") && line.contains("; SameSite=Strict"),
            "{line}"
        );
        assert!(!line.contains("Secure"), "plain http: {line}");
    }
    assert!(
        set.iter()
            .any(|l| l.starts_with("tidings_refresh=") && l.contains("Path=/web/session/refresh;"))
    );
    let device = service
        .device_info(body["deviceId"].as_str().unwrap())
        .await;
    assert_eq!(device["platform"], "webPush");

    let who = browser
        .request(Method::GET, "/web/session")
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200);
    assert_eq!(who.json::<Value>().await.unwrap()["userName"], "alice");
}

#[tokio::test]
async fn the_session_cookie_counts_only_for_requests_from_the_sites_own_pages() {
    let service = TestService::start().await;
    let (app, _agent, unsid) = service.alice_and_contoso().await;
    let posted = service
        .post_ok(&app, &unsid, &note("contoso.com", "hello"))
        .await;
    let mut browser = Browser::new(&service);
    assert_eq!(browser.sign_in("alice", "alice-pw").await.0, 200);
    let path = format!("/v1/me/notifications/{}", posted.id);
    let read = json!({"readState": "read"});

    let feed = browser
        .request(Method::GET, "/v1/me/notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let ok = browser
        .request(Method::PATCH, &path)
        .json(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    browser.origin = "http://evil.example".to_owned();
    let feed = browser
        .request(Method::GET, "/v1/me/notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 403);
    let change = browser
        .request(Method::PATCH, &path)
        .json(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 403);
    // No Origin at all: reading is fine (browsers leave it out of same-origin GETs),
    // changing is not.
    let bare = |method, path: &str| {
        service
            .http
            .request(method, format!("{}{path}", service.url))
            .header(
                COOKIE,
                format!("tidings_access={}", browser.access.clone().unwrap()),
            )
    };
    let feed = bare(Method::GET, "/v1/me/notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let change = bare(Method::PATCH, &path).json(&read).send().await.unwrap();
    assert_eq!(change.status(), 403);
    // Signing in from another site's page is refused too.
    let (status, _, set) = browser.sign_in("alice", "alice-pw").await;
    assert_eq!((status, set.len()), (403, 0));
}

#[tokio::test]
async fn the_channel_takes_the_cookie_from_the_sites_origin_only() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let mut browser = Browser::new(&service);
    assert_eq!(browser.sign_in("alice", "alice-pw").await.0, 200);
    let connect = |origin: &str| {
        let ws = format!(
            "{}/v1/me/channel?cursor=0",
            service.url.replacen("http", "ws", 1)
        );
        let mut request = ws.into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("Origin", origin.parse().unwrap());
        headers.insert(
            "Cookie",
            format!("tidings_access={}", browser.access.clone().unwrap())
                .parse()
                .unwrap(),
        );
        tokio_tungstenite::connect_async(request)
    };
    let (_socket, response) = connect(&service.url).await.unwrap();
    assert_eq!(response.status(), 101);
    let refused = connect("http://evil.example").await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
}

#[tokio::test]
async fn refreshing_rotates_both_cookies_and_signing_out_revokes_the_browser() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let mut browser = Browser::new(&service);
    let (_, body, _) = browser.sign_in("alice", "alice-pw").await;
    let device = body["deviceId"].as_str().unwrap().to_owned();
    let (old_access, old_refresh) = (browser.access.clone(), browser.refresh.clone());

    let refreshed = browser
        .request(Method::POST, "/web/session/refresh")
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_eq!(browser.keep(&refreshed).len(), 2);
    assert_ne!(browser.refresh, old_refresh);
    // The new access cookie works. (It may equal the old one: tokens for one device
    // issued within the same second are the same.)
    let who = browser
        .request(Method::GET, "/web/session")
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200);

    let out = browser
        .request(Method::DELETE, "/web/session")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = browser.keep(&out);
    assert!(
        cleared.iter().all(|l| l.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(
        (browser.access.clone(), browser.refresh.clone()),
        (None, None)
    );
    assert_eq!(service.device_info(&device).await["revoked"], true);
    browser.access = old_access;
    let after = browser
        .request(Method::GET, "/web/session")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn web_sign_ins_are_slowed_after_repeated_failures_like_any_other() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let mut browser = Browser::new(&service);
    let mut last = 0;
    for _ in 0..8 {
        last = browser.sign_in("alice", "guess").await.0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "repeated failures are rate limited");
}

#[tokio::test]
async fn the_web_app_answers_only_to_host_names_that_cannot_be_rebound() {
    let service = crate::helpers::TestService::start_with(|s| {
        s.allowed_hosts = vec!["notify.example.com".to_owned()];
    })
    .await;
    let status = |path: &'static str, host: &'static str| {
        let request = service
            .http
            .get(format!("{}{path}", service.url))
            .header("Host", host);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // A page whose own name was pointed at this service (DNS rebinding).
    assert_eq!(status("/", "evil.example:7319").await, 403);
    assert_eq!(status("/web/session", "evil.example").await, 403);
    let refused = service
        .http
        .get(format!("{}/", service.url))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("allowed_hosts"), "{refused}");
    // Names that cannot be rebound, and the listed one.
    for host in [
        "127.0.0.1:7319",
        "localhost:7319",
        "[::1]",
        "notify.example.com",
    ] {
        assert_eq!(status("/", host).await, 200, "{host}");
    }
    // The APIs need tokens such a page does not have: open to any name.
    assert_eq!(status("/healthz", "evil.example").await, 200);
}
