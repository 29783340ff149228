//! `GET /metrics`: the service's counters, in Prometheus' text format (OpenMetrics),
//! through the official `prometheus-client`. Labels never carry a user, a device, an id
//! or a secret: routes are the route templates (`/beta/me/notifications/{id}`), never
//! the paths asked for.
//!
//! Counted where things happen: requests by route and status (a layer on the router),
//! notifications accepted (`201`s of the two post routes), changes delivered on
//! channels, refusals by reason (rate limits, full queues, the connection cap), acked
//! cursor lag (how far behind its user's feed a device's ack is, as a histogram), and
//! store commit latency (a sled flush, a PostgreSQL commit), and with PostgreSQL the
//! notify lag (how long another node's change took to reach this one). Read at each scrape: open channels, connected devices, and
//! whether the store has failed.

use std::time::Duration;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, MatchedPath, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use secrecy::ExposeSecret;

use super::State;

/// A request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

/// A refusal's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// Why something was refused before it was served.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    /// Sign-in failures slowed (`429`).
    RateLimited,
    /// A full queue or cap answered `503` (password checks, channels).
    Overloaded,
    /// The open-connection cap: the connection was closed at once.
    ConnectionCap,
    /// The cap on one address's open connections: the connection was closed at once.
    AddressCap,
}

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refused: Family<RefusalLabels, Counter>,
    accepted: Counter,
    delivered: Counter,
    ack_lag: Histogram,
    flush_seconds: Histogram,
    notify_lag_seconds: Histogram,
    channels: Gauge,
    devices: Gauge,
    store_failed: Gauge,
    recovery_attempts: Counter,
    notify_overflows: Counter,
    notify_reads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let accepted = Counter::default();
        let delivered = Counter::default();
        let ack_lag = Histogram::new([0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 1_000.0, 10_000.0]);
        let flush_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 14));
        let notify_lag_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        let (channels, devices, store_failed) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "tidings_http_requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        registry.register(
            "tidings_refused",
            "Requests and connections refused before being served, by reason",
            refused.clone(),
        );
        registry.register(
            "tidings_notifications_accepted",
            "Notifications accepted (answered 201)",
            accepted.clone(),
        );
        registry.register(
            "tidings_changes_delivered",
            "Changes sent to devices on their channels",
            delivered.clone(),
        );
        registry.register(
            "tidings_ack_lag",
            "How many changes a device's ack is behind its user's feed, at each ack",
            ack_lag.clone(),
        );
        registry.register(
            "tidings_store_flush_seconds",
            "Time to make writes durable: a group commit's flush (sled) or a transaction's commit (PostgreSQL: the database's latency)",
            flush_seconds.clone(),
        );
        registry.register(
            "tidings_notify_lag_seconds",
            "PostgreSQL: from another node's commit to this node hearing of it (LISTEN/NOTIFY)",
            notify_lag_seconds.clone(),
        );
        registry.register("tidings_channels_open", "Open channels", channels.clone());
        registry.register(
            "tidings_devices_connected",
            "Devices with at least one open channel",
            devices.clone(),
        );
        let recovery_attempts = Counter::default();
        let notify_overflows = Counter::default();
        registry.register(
            "tidings_notify_overflows",
            "PostgreSQL: times this node fell behind other nodes' announcements, dropped some and caught up from the database",
            notify_overflows.clone(),
        );
        let notify_reads = Counter::default();
        registry.register(
            "tidings_notify_reads",
            "PostgreSQL: times this node read other nodes' changes back from the database because their announcements did not carry them (too big to, or missed)",
            notify_reads.clone(),
        );
        registry.register(
            "tidings_store_recovery_attempts",
            "Attempts to reopen a failed store or its database link (paced: 250 ms doubling up to recovery_interval)",
            recovery_attempts.clone(),
        );
        registry.register(
            "tidings_store_failed",
            "1 while the store refuses writes (a failed disk, a lost database link), else 0",
            store_failed.clone(),
        );
        Self {
            registry,
            requests,
            refused,
            accepted,
            delivered,
            ack_lag,
            flush_seconds,
            notify_lag_seconds,
            channels,
            devices,
            store_failed,
            recovery_attempts,
            notify_overflows,
            notify_reads,
        }
    }
}

impl Metrics {
    /// A notification was accepted.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// `changes` changes were sent on a channel.
    pub fn delivered(&self, changes: u64) {
        self.delivered.inc_by(changes);
    }

    /// Something was refused.
    pub fn refused(&self, why: Refusal) {
        let reason = match why {
            Refusal::RateLimited => "rate_limited",
            Refusal::Overloaded => "overloaded",
            Refusal::ConnectionCap => "connection_cap",
            Refusal::AddressCap => "address_cap",
        };
        self.refused.get_or_create(&RefusalLabels { reason }).inc();
    }

    /// A device acked `behind` changes short of its user's newest.
    pub fn ack_lag(&self, behind: u64) {
        #[allow(clippy::cast_precision_loss)] // a lag of 2^53 changes is not a worry
        self.ack_lag.observe(behind as f64);
    }

    /// A flush took `took`.
    pub fn flushed(&self, took: Duration) {
        self.flush_seconds.observe(took.as_secs_f64());
    }

    /// The recovery task tried to reopen the failed store.
    pub fn recovery_attempt(&self) {
        self.recovery_attempts.inc();
    }

    /// This node dropped announcements and caught up from the database.
    pub fn notify_overflowed(&self) {
        self.notify_overflows.inc();
    }

    /// This node read other nodes' changes back from the database.
    pub fn notify_read(&self) {
        self.notify_reads.inc();
    }

    /// Another node's change took `lag` to reach this one.
    pub fn notified(&self, lag: Duration) {
        self.notify_lag_seconds.observe(lag.as_secs_f64());
    }

    /// The text of a scrape, with the gauges read from `state` now.
    fn render(&self, state: &State) -> Result<String, std::fmt::Error> {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.channels.set(gauge(state.hub.channel_count()));
        self.devices.set(gauge(state.hub.device_count()));
        self.store_failed
            .set(i64::from(state.store.failure().is_some()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The router layer that counts every routed request by route template and status.
pub async fn count_requests(
    Extract(state): Extract<State>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: status.as_u16(),
        })
        .inc();
    match status {
        StatusCode::TOO_MANY_REQUESTS => metrics.refused(Refusal::RateLimited),
        StatusCode::SERVICE_UNAVAILABLE => metrics.refused(Refusal::Overloaded),
        _ => {}
    }
    response
}

/// `GET /metrics` on the main listener: as [`serve`], but without `metrics_token` only
/// for clients on this machine (loopback). A service on the internet must not tell
/// everyone its traffic; an operator asks for more with `metrics_token` or
/// `metrics_listen`.
pub async fn serve_main(
    Extract(state): Extract<State>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let token_set = state.settings.metrics_token.is_some();
    if !open_to(token_set, peer.map(|p| p.0.0.ip())) {
        return (
            StatusCode::FORBIDDEN,
            "/metrics answers clients on this machine only: set metrics_token (or metrics_token_file) to let a scraper elsewhere in, or serve it on metrics_listen\n",
        )
            .into_response();
    }
    serve(Extract(state), headers).await
}

/// Whether `/metrics` on the main listener may answer a client at `peer`: anyone may
/// try with a token set (the token decides), else clients on this machine only.
fn open_to(token_set: bool, peer: Option<std::net::IpAddr>) -> bool {
    token_set || peer.is_none_or(|ip| ip.is_loopback())
}

/// `GET /metrics`; with `metrics_token` set, only for `Authorization: Bearer TOKEN`.
pub async fn serve(Extract(state): Extract<State>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token {
        let given = super::http::access::bearer(&headers).unwrap_or_default();
        if !super::auth::secret_matches(given, &super::auth::sha256(token.expose_secret())) {
            return (
                StatusCode::UNAUTHORIZED,
                "metrics_token is set: send Authorization: Bearer TOKEN\n",
            )
                .into_response();
        }
    }
    match state.metrics.render(&state) {
        Ok(text) => {
            let kind = HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            );
            ([(header::CONTENT_TYPE, kind)], text).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::open_to;

    /// No test can connect from an address that is not loopback (every server a test
    /// starts listens on loopback), so the rule is tested here.
    #[test]
    fn without_a_token_the_main_listener_answers_this_machine_only() {
        let local = Some("127.0.0.1".parse().unwrap());
        let remote = Some("203.0.113.7".parse().unwrap());
        assert!(open_to(false, local));
        assert!(!open_to(false, remote));
        assert!(open_to(true, remote), "with a token, the token decides");
    }
}
