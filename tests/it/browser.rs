//! A headless Chromium driven over WebDriver: Debian's `chromium` through its own
//! `chromedriver` on a loopback port, with a throwaway profile. Shared by the web app's
//! tests (`web_app.rs`) and its benchmark (`benches/web.rs`), so it needs nothing else
//! of either.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Longest wait for the driver or an element.
const DEADLINE: Duration = Duration::from_secs(20);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session through its own chromedriver.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the web app's tests need Debian's chromium and chromium-driver (./scripts/test.sh installs them as root)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DEADLINE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--window-size=900,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            // Notifications are allowed, as if the user had said yes when the page asked.
            "prefs": {"profile.default_content_setting_values.notifications": 1},
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        capabilities.insert("unhandledPromptBehavior".to_owned(), json!("ignore"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The drawn notifications: `{id, title, state}`, top to bottom.
    pub async fn items(&self) -> Vec<Value> {
        let script = "return [...document.querySelectorAll('#list .item')].map(li => ({id: li.dataset.id, title: li.querySelector('h3').textContent, state: li.querySelector('.state').textContent}))";
        self.eval(script)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn item(&self, id: &str) -> Option<Value> {
        self.items().await.into_iter().find(|i| i["id"] == id)
    }

    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        element.click().await.unwrap();
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        let script =
            format!("const e = document.querySelector({css:?}); return e ? e.textContent : null");
        self.eval(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn sign_in(&self, user: &str, password: &str) {
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("#signin-form button[type=submit]").await;
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
        let mut driver = self.driver;
        driver.kill().await.unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
