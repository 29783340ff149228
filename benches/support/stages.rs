//! The stage breakdown of a post (`tidings::service::stage`): a tracing layer that
//! records how long each stage span lived and each `hop` event's wait, and prints
//! p50 / p99 per stage.
//!
//! Installed as the bench's global subscriber, enabled for the stage target alone and
//! only between [`Stages::start`] and [`Stages::report`] (the latency measure): the
//! other measures make no spans, as in production.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidings::service::stage;
use tracing::Metadata;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::DynFilterFn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Stage durations, by stage, while recording.
#[derive(Clone, Default)]
pub struct Stages {
    on: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<&'static str, Vec<Duration>>>>,
}

/// The order stages are printed in: a post's path, then the device's side.
const ORDER: &[&str] = &[
    "auth", "body", "admit", "store", "flush", "publish", "answer", "hop", "deliver",
];

impl Stages {
    /// Installs the layer as the process's subscriber.
    pub fn install() -> Self {
        let stages = Self::default();
        // Decided at each span (not once per call site), so that outside the latency
        // measure no span is made at all, as in production.
        let on = stages.on.clone();
        let filter = DynFilterFn::new(move |_: &Metadata<'_>, _: &Context<'_, Registry>| {
            on.load(Ordering::Relaxed)
        })
        .with_callsite_filter(|meta| {
            if meta.target() == stage::TARGET && *meta.level() <= Level::DEBUG {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        });
        let subscriber = Registry::default().with(stages.clone().with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        stages
    }

    /// Forgets what was recorded and records from now on.
    pub fn start(&self) {
        self.seen.lock().unwrap().clear();
        self.on.store(true, Ordering::SeqCst);
    }

    /// Stops recording; prints p50 / p99 of each stage.
    pub fn report(&self) {
        self.on.store(false, Ordering::SeqCst);
        let mut seen = self.seen.lock().unwrap();
        println!("  stages (p50 / p99, n):");
        for name in ORDER {
            let Some(times) = seen.get_mut(name) else {
                continue;
            };
            times.sort_unstable();
            let pct = |p: f64| {
                let at = ((times.len() as f64 * p) as usize).min(times.len() - 1);
                times[at].as_secs_f64() * 1e3
            };
            println!(
                "    {name:8} {:.3} / {:.3} ms (n={})",
                pct(0.5),
                pct(0.99),
                times.len()
            );
        }
    }

    fn record(&self, name: &'static str, took: Duration) {
        if self.on.load(Ordering::Relaxed) {
            self.seen
                .lock()
                .unwrap()
                .entry(name)
                .or_default()
                .push(took);
        }
    }
}

/// When a stage span was made.
struct Began(Instant);

/// A `hop` event's fields.
#[derive(Default)]
struct Hop {
    stage: Option<&'static str>,
    us: Option<u64>,
}

impl Visit for Hop {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "us" {
            self.us = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "stage" && value == "hop" {
            self.stage = Some("hop");
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Stages {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Began(Instant::now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(began) = span.extensions().get::<Began>()
        {
            self.record(span.metadata().name(), began.0.elapsed());
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut hop = Hop::default();
        event.record(&mut hop);
        if let (Some(name), Some(us)) = (hop.stage, hop.us) {
            self.record(name, Duration::from_micros(us));
        }
    }
}
