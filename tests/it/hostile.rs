//! Attacks from outside on the real binary, each with test-sized limits: slow clients,
//! too many connections, trickled bodies, password-guessing storms, channel floods and
//! oversized frames. Each test fails if its defence is taken out (it would hang until
//! the deadline, or see the wrong status).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{DEADLINE, Device, Event, http_client};
use crate::process::{Process, provision};

/// Starts the real binary with `limits`.
async fn service(limits: &[&str]) -> (Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let process = Process::start_with(&dir.path().join("service"), "127.0.0.1:0", limits).await;
    (process, dir)
}

fn addr(process: &Process) -> String {
    process.url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes; returns what it sent. Panics past the deadline.
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut seen))
        .await
        .expect("the service never closed the connection")
        .ok();
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_closed() {
    let (process, _dir) = service(&["--header-timeout", "300ms"]).await;
    let mut slow = TcpStream::connect(addr(&process)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr(&process)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once_and_the_rest_served() {
    let (process, _dir) = service(&["--max-connections", "3", "--header-timeout", "60s"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&process)).await.unwrap());
    }
    // The service accepts them one by one: wait until the fourth is refused.
    let mut extra = TcpStream::connect(addr(&process)).await.unwrap();
    let answer = read_to_close(&mut extra).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    drop(held);
    let http = http_client();
    crate::helpers::wait_until("a freed slot serves again", || async {
        http.get(format!("{}/healthz", process.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let (process, _dir) = service(&["--body-timeout", "300ms"]).await;
    let mut slow = TcpStream::connect(addr(&process)).await.unwrap();
    slow.write_all(
        b"POST /oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("requestTimeout"), "{answer}");
}

/// The service's resident memory peak (VmHWM), in MiB.
fn peak_mib(process: &Process) -> u64 {
    let pid = process.child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

async fn bad_grant(http: &reqwest::Client, url: &str, user: &str) -> reqwest::Response {
    http.post(format!("{url}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_storm_of_bad_passwords_is_bounded_then_slowed() {
    let (process, dir) = service(&[
        "--password-checks",
        "1",
        "--password-queue",
        "2",
        "--free-failures-per-address",
        "1000",
    ])
    .await;
    provision(&dir.path().join("service"), &process.url).await;
    let http = http_client();
    let storm: Vec<_> = (0..48)
        .map(|n| {
            let http = http.clone();
            let url = process.url.clone();
            tokio::spawn(async move { bad_grant(&http, &url, &format!("guess{n}")).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for answer in storm {
        let response = answer.await.unwrap();
        if response.status() == 503 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert!(
        statuses.contains(&503),
        "the queue overflowed: {statuses:?}"
    );
    assert!(statuses.contains(&401), "some were checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 503].contains(s)),
        "{statuses:?}"
    );
    // 48 checks of 19 MiB each at once would pass 900 MiB.
    let peak = peak_mib(&process);
    assert!(peak < 250, "memory peak {peak} MiB");
    // One name guessed again and again from one address is slowed.
    let mut last = 0;
    for _ in 0..8 {
        let response = bad_grant(&http, &process.url, "alice").await;
        last = response.status().as_u16();
        if last == 429 {
            let wait = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(wait.parse::<u64>().unwrap() >= 1, "{wait}");
            break;
        }
    }
    assert_eq!(last, 429, "repeated failures are rate limited");
}

async fn channel_close_code(channel: &mut crate::helpers::Channel) -> Option<u16> {
    loop {
        if let Event::Closed(code) = channel.next_event().await {
            return code;
        }
    }
}

#[tokio::test]
async fn a_device_flooding_channels_keeps_only_its_newest() {
    let (process, dir) = service(&["--channels-per-device", "2", "--max-channels", "3"]).await;
    let (_, device, _) = provision(&dir.path().join("service"), &process.url).await;
    let mut first = device.channel(0).await;
    first.until_synced().await;
    let mut second = device.channel(0).await;
    second.until_synced().await;
    let mut third = device.channel(0).await;
    third.until_synced().await;
    assert_eq!(channel_close_code(&mut first).await, Some(4001));
    // The total cap: a second device may add one channel, then no more.
    let other = crate::helpers::sign_in_at(&http_client(), &process.url, "alice", "linux").await;
    let mut fourth = other.channel(0).await;
    fourth.until_synced().await;
    let refused = try_channel(&other).await;
    assert_eq!(refused, Some(503));
}

/// The HTTP status a channel request is refused with, if it is.
async fn try_channel(device: &Device) -> Option<u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/me/channel", device.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", device.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_oversized_frame_closes_the_channel_with_1009() {
    let (process, dir) = service(&[]).await;
    let (_, device, _) = provision(&dir.path().join("service"), &process.url).await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    let huge = format!(
        "{{\"type\":\"ack\",\"seq\":1,\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    channel
        .socket
        .send(Message::Text(huge.into()))
        .await
        .unwrap();
    assert_eq!(channel_close_code(&mut channel).await, Some(1009));
    let _ = tokio::time::timeout(Duration::from_secs(1), channel.socket.next()).await;
}

#[tokio::test]
async fn a_stolen_refresh_token_used_after_rotation_signs_the_device_out() {
    let (process, dir) = service(&[]).await;
    let (_, device, _) = provision(&dir.path().join("service"), &process.url).await;
    let http = http_client();
    let grant = |token: String| {
        let http = http.clone();
        let url = process.url.clone();
        async move {
            let response = http
                .post(format!("{url}/oauth2/v2.0/token"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let (status, first) = grant(device.refresh.clone()).await;
    assert_eq!(status, 200);
    let newer = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = grant(newer.clone()).await;
    assert_eq!(status, 200, "the device goes on with the newest token");
    // Someone replays the first token, long replaced: the device is signed out.
    assert_eq!(grant(device.refresh.clone()).await.0, 401);
    assert_eq!(grant(newer).await.0, 401);
    // And a wrong method on a real route is 405 with Allow.
    let wrong = http
        .patch(format!("{}/oauth2/v2.0/token", process.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "POST");
}

#[tokio::test]
async fn one_host_holding_its_cap_leaves_room_for_others_and_is_told_503() {
    let (process, _dir) = service(&[
        "--max-connections",
        "100",
        "--max-connections-per-address",
        "20",
        "--header-timeout",
        "60s",
    ])
    .await;
    // One host opens more idle connections than the whole cap.
    let mut hogs = Vec::new();
    for _ in 0..110 {
        hogs.push(TcpStream::connect(addr(&process)).await.unwrap());
    }
    // One more that sends a request at once: it reads the 503, not a reset.
    let mut asking = TcpStream::connect(addr(&process)).await.unwrap();
    asking
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut asking).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(
        answer.ends_with("}}"),
        "the whole answer arrives: {answer:?}"
    );
    // Another host is served every time while the first holds its share.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut served = 0;
    for _ in 0..40 {
        let response = other.get(format!("{}/healthz", process.url)).send().await;
        served += usize::from(response.is_ok_and(|r| r.status() == 200));
    }
    assert_eq!(served, 40, "another host's requests all get through");
    // The first host's connections beyond its cap were told 503 and closed.
    let mut refused = 0;
    for hog in &mut hogs[20..] {
        refused += usize::from(read_to_close(hog).await.starts_with("HTTP/1.1 503"));
    }
    assert_eq!(refused, 90);
}
