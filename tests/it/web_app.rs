//! The web app in a real headless Chromium, driven over WebDriver (chromedriver, both
//! from Debian; the test command installs them), against the real service and a real
//! agent (the binary, signed in to the same user): sign-in, live notifications, reads
//! both ways, delete, a note, devices, sign-out, hostile titles and the page's headers.

use fantoccini::Locator;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::browser::Browser;
use crate::helpers::{App, TestService, note, wait_until};
use crate::home::Home;

/// The cast: alice's agent (the real binary) subscribed to contoso.com, the app that
/// posts, and a browser on the service's page.
pub struct Scene {
    pub service: TestService,
    pub app: App,
    pub unsid: String,
    pub home: Home,
    agent: Child,
    pub browser: Browser,
}

impl Scene {
    pub async fn start() -> Self {
        let service = TestService::start().await;
        service.add_user("alice").await;
        let app = service.add_app("contoso.com").await;
        let home = Home::new();
        home.login(&service.url, "alice", "alice-pw").await;
        let agent = home.serving_agent().await;
        let subscribed = home.run(&["subscribe", "contoso.com"]).await;
        let unsid = String::from_utf8(subscribed.stdout)
            .unwrap()
            .trim()
            .to_owned();
        let browser = Browser::start().await;
        browser.client.goto(&service.url).await.unwrap();
        Self {
            service,
            app,
            unsid,
            home,
            agent,
            browser,
        }
    }

    /// The scene with alice signed in to the page.
    pub async fn signed_in() -> Self {
        let scene = Self::start().await;
        scene.browser.sign_in("alice", "alice-pw").await;
        scene.shows("inbox").await;
        scene
    }

    pub async fn end(self) {
        self.browser.close().await;
        let mut agent = self.agent;
        // Its device may have been revoked, so its exit status is not the point here.
        agent.kill().await.unwrap();
        self.service.stop().await;
    }

    /// Posts as the app; returns the notification's id.
    pub async fn post(&self, title: &str) -> String {
        let posted = self
            .service
            .post_ok(&self.app, &self.unsid, &note("contoso.com", title))
            .await;
        posted.id.to_string()
    }

    /// The agent's view of one notification (`tidings history --json`).
    pub async fn on_agent(&self, id: &str) -> Option<Value> {
        let listed = self.home.json(&["history", "--limit", "1000"]).await;
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
    }

    pub async fn shows(&self, section: &str) {
        let script = format!("return !document.getElementById({section:?}).hidden");
        wait_until(&format!("the page shows #{section}"), || async {
            self.browser.eval(&script).await == true
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_with_a_strict_policy() {
    let service = TestService::start().await;
    let page = reqwest::get(format!("{}/", service.url)).await.unwrap();
    let headers = page.headers();
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
        "{policy}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_then_the_right_one_opens_the_inbox() {
    let owned = Scene::start().await;
    let scene = &owned;
    let browser = &scene.browser;
    browser.sign_in("alice", "wrong").await;
    wait_until("the refusal shows", || async {
        browser.text("#signin-error").await == "invalid user name or password"
    })
    .await;
    browser.sign_in("alice", "alice-pw").await;
    scene.shows("inbox").await;
    owned.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_travel_both_ways_and_a_delete_everywhere() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let browser = &scene.browser;
    // Posted by an app backend: appears without a reload.
    let first = scene.post("Build passed").await;
    wait_until("the post appears", || async {
        browser.item(&first).await.is_some()
    })
    .await;
    // Read in the browser: read on the agent.
    browser
        .click(r#"button[aria-label="Mark Build passed read"]"#)
        .await;
    wait_until("the agent sees the read", || async {
        scene
            .on_agent(&first)
            .await
            .is_some_and(|n| n["readState"] == "read")
    })
    .await;
    // Read on the agent: read on the page.
    let second = scene.post("Deploy done").await;
    wait_until("the second appears", || async {
        browser.item(&second).await.is_some()
    })
    .await;
    let show = browser.client.find(Locator::Css("#show")).await.unwrap();
    show.select_by_value("all").await.unwrap();
    let read = scene.home.run(&["read", &second]).await;
    assert!(read.status.success(), "{read:?}");
    wait_until("the page shows the agent's read", || async {
        browser
            .item(&second)
            .await
            .is_some_and(|i| i["state"] == "read")
    })
    .await;
    // Delete in the browser: gone everywhere.
    browser
        .click(r#"button[aria-label="Delete Build passed"]"#)
        .await;
    wait_until("it leaves the page", || async {
        browser.item(&first).await.is_none()
    })
    .await;
    wait_until("and the agent", || async {
        scene.on_agent(&first).await.is_none()
    })
    .await;
    owned.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_reaches_the_agent() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let browser = &scene.browser;
    browser.click("#note summary").await;
    browser.fill("#note-title", "Pick up milk").await;
    browser.click("#note-form button[type=submit]").await;
    wait_until("the agent has the note", || async {
        let listed = scene.home.json(&["history"]).await;
        let items = listed["items"].as_array().unwrap().clone();
        items
            .iter()
            .any(|n| n["payload"]["visualContent"]["title"] == "Pick up milk")
    })
    .await;
    // What the README shows (target/web-inbox.png, copied to docs/).
    browser.click("#note summary").await;
    let shot = browser.client.screenshot().await.unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/web-inbox.png"),
        shot,
    )
    .unwrap();
    owned.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_title_is_only_text() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let browser = &scene.browser;
    let hostile = "<img src=x onerror=alert(1)>";
    let evil = scene.post(hostile).await;
    wait_until("the hostile one appears", || async {
        browser.item(&evil).await.is_some()
    })
    .await;
    assert_eq!(browser.item(&evil).await.unwrap()["title"], hostile);
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#list img').length")
            .await,
        0
    );
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert ran"
    );
    owned.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_is_labelled_and_the_page_fits_a_phone() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let browser = &scene.browser;
    let script = "return {
        unlabelled: [...document.querySelectorAll('input, select, textarea')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id),
        nameless: [...document.querySelectorAll('button')]
            .filter(b => !b.textContent.trim() && !b.getAttribute('aria-label')).length,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
    }";
    let wide = browser.eval(script).await;
    assert_eq!(
        (wide["unlabelled"].clone(), wide["nameless"].clone()),
        (json!([]), json!(0)),
        "{wide}"
    );
    browser.client.set_window_size(390, 844).await.unwrap();
    let phone = browser.eval(script).await;
    assert!(
        phone["overflow"].as_i64().unwrap() <= 0,
        "no sideways scrolling on a phone: {phone}"
    );
    browser.client.set_window_size(900, 1000).await.unwrap();
    owned.end().await;
}

/// Records each desktop notification the page makes, and whether it was closed. The
/// real `Notification` still makes them; headless Chromium shows them nowhere a test
/// can look, so this spy is the one edge watched from inside the page.
const NOTIFICATION_SPY: &str = r"
    const Real = window.Notification;
    window.shown = [];
    class Spy extends Real {
        constructor(title, options) {
            super(title, options);
            const record = {title, requireInteraction: options.requireInteraction, silent: options.silent, closed: false};
            window.shown.push(record);
            const close = this.close.bind(this);
            this.close = () => { record.closed = true; close(); };
        }
        static get permission() { return Real.permission; }
        static requestPermission() { return Real.requestPermission(); }
    }
    window.Notification = Spy;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_notifications_follow_priority_do_not_disturb_and_reads_elsewhere() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let browser = &scene.browser;
    browser.eval(NOTIFICATION_SPY).await;
    browser.click("#desktop-toggle").await;
    wait_until("desktop notifications are on", || async {
        browser.text("#desktop-toggle").await == "Desktop notifications: on"
    })
    .await;
    let shown = || browser.eval("return window.shown");
    let mut urgent = note("contoso.com", "Server down");
    urgent["priority"] = "High".into();
    let id = scene
        .service
        .post_ok(&scene.app, &scene.unsid, &urgent)
        .await
        .id
        .to_string();
    wait_until("a desktop notification shows", || async {
        shown().await.as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    let first = shown().await[0].clone();
    assert_eq!(
        (first["title"].clone(), first["requireInteraction"].clone()),
        ("Server down".into(), true.into())
    );
    // Read on the agent: the desktop notification closes.
    let read = scene.home.run(&["read", &id]).await;
    assert!(read.status.success(), "{read:?}");
    wait_until("it closes", || async { shown().await[0]["closed"] == true }).await;
    // Do not disturb: stored and listed, not shown.
    browser.click("#dnd").await;
    let quiet = scene.post("During quiet time").await;
    wait_until("it is listed", || async {
        browser.item(&quiet).await.is_some()
    })
    .await;
    assert_eq!(
        shown().await.as_array().unwrap().len(),
        1,
        "nothing shown in do-not-disturb"
    );
    browser.click("#dnd").await;
    owned.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_revoked_and_signing_out_revokes_the_browser() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let (browser, service) = (&scene.browser, &scene.service);
    // Revoke the agent's device from the Devices page (the button asks twice).
    browser.click(r#"nav button[data-page="devices"]"#).await;
    let agent_device = scene.home.json(&["status"]).await["deviceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = service.device_info(&agent_device).await["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = format!(r#"button[aria-label="Revoke {name}"]"#);
    browser.click(&revoke).await;
    browser.click(&revoke).await;
    wait_until("the agent's device is revoked", || async {
        service.device_info(&agent_device).await["revoked"] == true
    })
    .await;
    // Signing out revokes the browser's own device.
    let who = browser
        .eval("return fetch('/web/session').then(r => r.json())")
        .await;
    let mine = who["deviceId"].as_str().unwrap().to_owned();
    assert_eq!(service.device_info(&mine).await["platform"], "webPush");
    browser.click("#sign-out").await;
    wait_until("the browser's device is revoked", || async {
        service.device_info(&mine).await["revoked"] == true
    })
    .await;
    scene.shows("signin").await;
    owned.end().await;
}
