//! `GET /metrics`, read by a Prometheus text parser (`prometheus-parse`): counters that
//! move as notifications flow, gauges of what is open now, histograms of flushes and
//! ack lag, no user, device or secret in any label; `metrics_token`.

// The values compared are small whole numbers, exact in an f64.
#![allow(clippy::float_cmp)]

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::helpers::{TestService, note, wait_until};

/// The service's metrics, parsed.
pub async fn scrape(service: &TestService) -> (Vec<Sample>, String) {
    let response = service
        .http
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    (Scrape::parse(lines).unwrap().samples, text)
}

/// The value of `metric` (with `label = value` when given), 0 when absent.
pub fn value(samples: &[Sample], metric: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| label.is_none_or(|(name, want)| s.labels.get(name) == Some(want)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn the_counters_move_as_notifications_flow_and_name_no_one() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    let (before, _) = scrape(&service).await;
    assert_eq!(value(&before, "tidings_channels_open", None), 1.0);
    assert_eq!(value(&before, "tidings_devices_connected", None), 1.0);
    assert_eq!(
        value(&before, "tidings_notifications_accepted_total", None),
        0.0
    );
    assert_eq!(value(&before, "tidings_store_failed", None), 0.0);

    for i in 0..3 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
            .await;
    }
    let mut last = 0;
    for _ in 0..3 {
        last = channel.next_change().await.0.0;
    }
    channel
        .send_json(&json!({"type": "ack", "seq": last}))
        .await;
    let refused = service
        .post(&app, "no-such-unsid", &note("contoso.com", "x"))
        .await;
    assert!(refused.status().is_client_error());

    wait_until("the ack is counted", || async {
        value(&scrape(&service).await.0, "tidings_ack_lag", None) >= 1.0
    })
    .await;
    let (after, text) = scrape(&service).await;
    assert_eq!(
        value(&after, "tidings_notifications_accepted_total", None),
        3.0
    );
    assert_eq!(value(&after, "tidings_changes_delivered_total", None), 3.0);
    let posts = ("route", "/beta/me/notifications");
    let created = after.iter().filter(|s| {
        s.metric == "tidings_http_requests_total"
            && s.labels.get(posts.0) == Some(posts.1)
            && s.labels.get("status") == Some("201")
    });
    assert_eq!(
        created
            .map(|s| value(std::slice::from_ref(s), &s.metric, None))
            .sum::<f64>(),
        3.0
    );
    assert!(
        value(&after, "tidings_store_flush_seconds", None) >= 3.0,
        "{text}"
    );
    for private in [
        "alice",
        device.id.as_str(),
        unsid.as_str(),
        "no-such-unsid",
        app.token.as_str(),
    ] {
        assert!(!text.contains(private), "{private} is in /metrics:\n{text}");
    }
    service.stop().await;
}

#[tokio::test]
async fn with_a_token_metrics_are_for_its_holder_only() {
    let service =
        TestService::start_with(|s| s.metrics_token = Some("s3cret".to_owned().into())).await;
    let url = format!("{}/metrics", service.url);
    let anonymous = service.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = service
        .http
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let holder = service
        .http
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(holder.status(), 200);
    assert!(
        holder
            .text()
            .await
            .unwrap()
            .contains("tidings_channels_open")
    );
    service.stop().await;
}

#[tokio::test]
async fn with_metrics_listen_metrics_are_served_there_and_only_there() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap();
    drop(free);
    let service = TestService::start_with(|s| s.metrics_listen = Some(address)).await;
    let main = service
        .http
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404, "not on the main listener");
    let url = format!("http://{address}/metrics");
    wait_until("the metrics address serves", || async {
        service.http.get(&url).send().await.is_ok()
    })
    .await;
    let served = service.http.get(&url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served
            .text()
            .await
            .unwrap()
            .contains("tidings_channels_open")
    );
    service.stop().await;
}
