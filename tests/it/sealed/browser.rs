//! The web app as a device with keys (`web/sealed.js`), in a real headless Chromium
//! beside a real agent: it shows the keys of its own subscriptions, opens with
//! WebCrypto what Python's `http_ece` encrypted for them (in several records), syncs a
//! read to the agent, shows what is for another device or does not open as such, keeps
//! its keys across a reload (the renewal keeps the UNSID) and destroys them when
//! signed out.

use serde_json::{Value, json};
use tidings::protocol::sealed::PublicKeys;

use super::{base64url, ciphertext, sealed_by_python_in};
use crate::helpers::wait_until;
use crate::web_app::Scene;

/// This browser's subscription to contoso.com as its Apps page shows it:
/// `{unsid, targetHostName, keys}`.
async fn browser_keys(scene: &Scene) -> Value {
    let browser = &scene.browser;
    browser.click(r#"nav button[data-page="apps"]"#).await;
    let script =
        "const e = document.querySelector('#app-list pre.keys'); return e && e.textContent";
    wait_until("the Apps page shows this browser's keys", || async {
        browser.eval(script).await.is_string()
    })
    .await;
    let text = browser.eval(script).await;
    browser.click(r#"nav button[data-page="inbox"]"#).await;
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

/// Posts `entries` (`[(unsid, content)]`) as encrypted content; the id.
async fn post_sealed(scene: &Scene, entries: &[(&str, String)]) -> String {
    let entries: Vec<_> = entries
        .iter()
        .map(|(unsid, content)| json!({"unsid": unsid, "content": content}))
        .collect();
    let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
    let posted = scene.service.post_ok(&scene.app, &scene.unsid, &body).await;
    posted.id.to_string()
}

/// The drawn title of `id`, once it is drawn.
async fn title_of(scene: &Scene, id: &str) -> String {
    let browser = &scene.browser;
    wait_until(&format!("{id} is drawn"), || async {
        browser.item(id).await.is_some()
    })
    .await;
    browser.item(id).await.unwrap()["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The text of `.part` in the row of `id` (null when it has none).
async fn part_of(scene: &Scene, id: &str, part: &str) -> Value {
    let script = format!(
        "const e = document.querySelector('#list .item[data-id=\"{id}\"] .{part}'); return e && e.textContent"
    );
    scene.browser.eval(&script).await
}

/// How many keys the browser keeps in IndexedDB.
async fn kept_keys(scene: &Scene) -> Value {
    let script = "return new Promise((resolve) => { const open = indexedDB.open('tidings', 1); \
        open.onupgradeneeded = () => open.result.createObjectStore('keys', { keyPath: 'unsid' }); \
        open.onsuccess = () => { const count = open.result.transaction('keys').objectStore('keys').count(); \
        count.onsuccess = () => { open.result.close(); resolve(count.result); }; }; })";
    scene.browser.eval(script).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_opens_what_is_encrypted_for_its_own_keys_and_only_that() {
    let owned = Scene::signed_in().await;
    let scene = &owned;
    let mine = browser_keys(scene).await;
    assert_eq!(mine["targetHostName"], "contoso.com");
    let unsid = mine["unsid"].as_str().unwrap().to_owned();
    assert_ne!(unsid, scene.unsid, "the browser's own subscription");
    let page: PublicKeys = serde_json::from_value(mine["keys"].clone()).unwrap();
    let agent: PublicKeys = serde_json::from_value(
        scene.home.json(&["subscribe", "contoso.com"]).await["keys"].clone(),
    )
    .unwrap();
    assert_eq!(kept_keys(scene).await, 1);

    // For both devices: the page's entry by http_ece in records of 40 bytes (several).
    let secret = format!("Your code is {}", std::process::id() % 1_000_000);
    let cleartext = json!({"visualContent": {"title": secret, "body": "ünïcödé 🔐"}}).to_string();
    let both = post_sealed(
        scene,
        &[
            (
                scene.unsid.as_str(),
                agent.seal(cleartext.as_bytes()).unwrap(),
            ),
            (unsid.as_str(), sealed_by_python_in(&page, &cleartext, 40)),
        ],
    )
    .await;
    assert_eq!(title_of(scene, &both).await, secret);
    assert_eq!(part_of(scene, &both, "body").await, "ünïcödé 🔐");
    assert_eq!(
        part_of(scene, &both, "sealed").await,
        "encrypted end to end"
    );
    wait_until("the agent opens it too", || async {
        scene
            .on_agent(&both)
            .await
            .is_some_and(|n| n["payload"]["visualContent"]["title"] == secret.as_str())
    })
    .await;

    // Only for the agent: a placeholder here. Tampered for the page: another.
    let agents_only = post_sealed(
        scene,
        &[(
            scene.unsid.as_str(),
            agent.seal(cleartext.as_bytes()).unwrap(),
        )],
    )
    .await;
    assert_eq!(
        title_of(scene, &agents_only).await,
        "(encrypted for another device)"
    );
    let mut tampered = ciphertext(&page.seal(cleartext.as_bytes()).unwrap());
    tampered[100] ^= 1;
    let broken = post_sealed(scene, &[(unsid.as_str(), base64url(&tampered))]).await;
    assert_eq!(
        title_of(scene, &broken).await,
        "(encrypted: could not be opened here)"
    );
    assert_eq!(part_of(scene, &broken, "body").await, Value::Null);

    // A read here reaches the agent; the page still shows the cleartext.
    scene
        .browser
        .click(&format!(r#"button[aria-label="Mark {secret} read"]"#))
        .await;
    wait_until("the agent has it read", || async {
        scene
            .on_agent(&both)
            .await
            .is_some_and(|n| n["readState"] == "read")
    })
    .await;

    // A reload renews the subscription (the same UNSID) and keeps its keys.
    scene.browser.client.refresh().await.unwrap();
    scene.shows("inbox").await;
    scene.browser.click("#show").await;
    scene
        .browser
        .eval("const s = document.getElementById('show'); s.value = 'all'; s.dispatchEvent(new Event('change')); return true")
        .await;
    assert_eq!(title_of(scene, &both).await, secret);
    assert_eq!(
        browser_keys(scene).await,
        mine,
        "the same UNSID, the same keys"
    );

    // Signed out: the keys are destroyed.
    scene.browser.click("#sign-out").await;
    scene.shows("signin").await;
    wait_until("the keys are destroyed", || async {
        kept_keys(scene).await == 0
    })
    .await;
    owned.end().await;
}
