//! One soak run: the deployment set up, the load and the schedule of faults run side by
//! side with the sampler, then everything started again and left to converge, and the
//! devices compared with the ledger.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Options;
use super::check::{self, Sample, Violations};
use super::deploy::{Device, Service};
use super::load::{self, Command, Ledger, Target};
use super::plan::{self, Fault};
use super::settle::{converge, purged};
use super::watch::{self, Watcher};

/// A process that did not start again after its kill.
const STUCK: &str = "a process did not start again";

pub type Devices = Arc<Vec<tokio::sync::Mutex<Device>>>;

/// What the end of a run found: violations, notifications held, how long converging
/// and purging took.
type Finished = (Violations, usize, Option<Duration>, Option<Duration>);

/// What a run found.
pub struct Outcome {
    pub ledger: Ledger,
    pub faults: Vec<(&'static str, u64)>,
    pub digest: u64,
    pub scheduled: usize,
    pub violations: Violations,
    pub samples: Vec<Sample>,
    pub held: usize,
    pub converged_in: Option<Duration>,
    /// Change frames the runner's own devices took, over how many connections.
    pub watched: (u64, u64),
    /// How long after the last expiry every agent had purged what expired (`None`:
    /// not within [`super::settle::PURGE_WITHIN`], or nothing expired).
    pub purged_in: Option<Duration>,
}

/// What the schedule's faults act on, and what they record.
struct Faulting {
    service: Service,
    service_pid: Arc<AtomicU32>,
    devices: Devices,
    users: Vec<String>,
    ledger: Arc<Mutex<Ledger>>,
    bursts: mpsc::UnboundedSender<Command>,
    restarts: JoinSet<()>,
    stuck: Arc<Mutex<Violations>>,
    done: Vec<(&'static str, u64)>,
    /// The runner's own device of each user, and what they found wrong.
    watchers: Vec<Watcher>,
    watch_found: Arc<Mutex<Violations>>,
    watch_stop: CancellationToken,
}

/// Sets up, runs and checks one soak.
pub async fn soak(options: &Options) -> Result<Outcome, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (service, app, users, devices) = deploy(options, dir.path()).await?;
    let target = Arc::new(Target {
        url: service.url.clone(),
        client_id: app["clientId"].as_str().unwrap_or_default().to_owned(),
        client_secret: app["clientSecret"].as_str().unwrap_or_default().to_owned(),
        unsids: devices
            .iter()
            .map(|d| (d.user.clone(), d.unsid.clone()))
            .collect(),
    });
    let devices: Devices = Arc::new(devices.into_iter().map(tokio::sync::Mutex::new).collect());
    let schedule = plan::schedule(options.seed, options.length, devices.len());
    let stop = CancellationToken::new();
    let (bursts, burst_rx) = mpsc::unbounded_channel();
    let watch_found: Arc<Mutex<Violations>> = Arc::default();
    let watch_stop = CancellationToken::new();
    let mut watchers = Vec::new();
    for user in options_users(options) {
        let found = watch_found.clone();
        let url = &service.url;
        watchers.push(watch::start(url, &user, "contoso.com", found, watch_stop.clone()).await?);
    }
    let mut run = Faulting {
        service_pid: Arc::new(AtomicU32::new(service.process.pid().unwrap_or(0))),
        service,
        devices,
        users,
        ledger: Arc::default(),
        bursts,
        restarts: JoinSet::new(),
        stuck: Arc::default(),
        done: plan::KINDS.map(|kind| (kind, 0u64)).to_vec(),
        watchers,
        watch_found,
        watch_stop,
    };
    let poster = tokio::spawn(load::post(
        target,
        run.ledger.clone(),
        options.seed,
        options.rate,
        burst_rx,
        stop.clone(),
    ));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampling = tokio::spawn(sample(
        run.service_pid.clone(),
        run.service.data_dir.clone(),
        run.devices.clone(),
        samples.clone(),
        options.sample_every,
        stop.clone(),
    ));
    run.play(&schedule, options.length).await;
    stop.cancel();
    let _ = poster.await;
    let (violations, held, converged_in, purged_in) = run.finish().await?;
    let _ = sampling.await;
    let ledger = std::mem::take(&mut *run.ledger.lock().unwrap());
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let watched = run.watchers.iter().fold((0, 0), |(frames, conns), w| {
        let seen = w.seen.lock().unwrap();
        (frames + seen.frames, conns + seen.connections)
    });
    Ok(Outcome {
        ledger,
        faults: run.done,
        digest: plan::digest(&schedule),
        scheduled: schedule.len(),
        violations,
        samples,
        held,
        converged_in,
        watched,
        purged_in,
    })
}

/// The users a run deploys, by name.
fn options_users(options: &Options) -> Vec<String> {
    (0..options.users).map(|u| format!("user{u}")).collect()
}

impl Faulting {
    /// Does each fault at its moment, then waits out the run's length; stops early
    /// when the node does not start again.
    async fn play(&mut self, schedule: &[(Duration, Fault)], length: Duration) {
        let started = Instant::now();
        for (at, fault) in schedule {
            tokio::time::sleep_until((started + *at).into()).await;
            let applied = self.apply(*fault).await;
            let pid = self.service.process.pid().unwrap_or(0);
            self.service_pid.store(pid, Ordering::Relaxed);
            match applied {
                Ok(true) => {
                    let kind = fault.kind();
                    if let Some(slot) = self.done.iter_mut().find(|(k, _)| *k == kind) {
                        slot.1 += 1;
                    }
                }
                Ok(false) => {}
                // The node did not start again: nothing more can be learnt from this run.
                Err(e) => {
                    self.stuck.lock().unwrap().add(STUCK, || e);
                    return;
                }
            }
        }
        tokio::time::sleep_until((started + length).into()).await;
    }

    /// Starts every agent that is down, leaves the devices to converge, compares them
    /// with the ledger, waits for what expired to be purged, and stops everything: what
    /// was found, the notifications the devices hold, how long converging took (`None`:
    /// it did not) and purging after the last expiry.
    async fn finish(&mut self) -> Result<Finished, String> {
        while self.restarts.join_next().await.is_some() {}
        for device in self.devices.iter() {
            let mut device = device.lock().await;
            if !device.process.is_running()
                && let Err(e) = device.restart().await
            {
                self.stuck.lock().unwrap().add(STUCK, || e);
            }
        }
        let converging = Instant::now();
        let (mut violations, held, converged) = if self.service.process.is_running() {
            converge(&self.devices, &self.watchers, &self.users, &self.ledger).await
        } else {
            (Violations::default(), 0, false)
        };
        let converged_in = converged.then(|| converging.elapsed());
        let (expired, purged_in) = purged(&self.devices, &self.ledger).await;
        violations.merge(expired);
        violations.merge(std::mem::take(&mut *self.stuck.lock().unwrap()));
        self.watch_stop.cancel();
        violations.merge(std::mem::take(&mut *self.watch_found.lock().unwrap()));
        self.service.process.kill().await;
        for device in self.devices.iter() {
            device.lock().await.process.kill().await;
        }
        Ok((violations, held, converged_in, purged_in))
    }

    /// Does one fault; false when there was nothing to do (the agent was down already).
    async fn apply(&mut self, fault: Fault) -> Result<bool, String> {
        match fault {
            Fault::KillService { down } => {
                self.service.process.kill().await;
                tokio::time::sleep(down).await;
                self.service.restart().await?;
            }
            Fault::KillAgent { device, down } => {
                let mut held = self.devices[device].lock().await;
                if !held.process.is_running() {
                    return Ok(false);
                }
                held.process.kill().await;
                let (devices, stuck) = (self.devices.clone(), self.stuck.clone());
                self.restarts.spawn(async move {
                    tokio::time::sleep(down).await;
                    let mut held = devices[device].lock().await;
                    if !held.process.is_running()
                        && let Err(e) = held.restart().await
                    {
                        stuck.lock().unwrap().add(STUCK, || e);
                    }
                });
            }
            Fault::Read { device, pick } => {
                let user = &self.users[device];
                return read(&self.devices[device], user, pick, &self.ledger).await;
            }
            Fault::Burst { count } => {
                let _ = self.bursts.send(Command::Burst(count));
            }
            Fault::DeleteGroup { device, group } => {
                let _ = self.bursts.send(Command::DeleteGroup { device, group });
            }
        }
        Ok(true)
    }
}

/// The service, its app (as `app add` answered), and each device with its user.
async fn deploy(
    options: &Options,
    dir: &std::path::Path,
) -> Result<(Service, serde_json::Value, Vec<String>, Vec<Device>), String> {
    let service = Service::start(dir.join("service")).await?;
    let app = service.admin(&["app", "add", "contoso.com"], None).await?;
    let mut users = Vec::new();
    let mut devices = Vec::new();
    for user in options_users(options) {
        let password = format!("{user}-pw\n");
        service
            .admin(&["user", "add", &user, "--password-stdin"], Some(&password))
            .await?;
        for d in 0..options.devices_per_user {
            let home = dir.join(format!("{user}-device{d}"));
            devices.push(Device::start(&user, home, &service.url, "contoso.com").await?);
            users.push(user.clone());
        }
    }
    Ok((service, app, users, devices))
}

/// Marks one of the `s` notifications device holds read, through its agent.
async fn read(
    device: &tokio::sync::Mutex<Device>,
    user: &str,
    pick: u64,
    ledger: &Mutex<Ledger>,
) -> Result<bool, String> {
    let device = device.lock().await;
    if !device.process.is_running() {
        return Ok(false);
    }
    let Ok(held) = device.history().await else {
        return Ok(false);
    };
    let mut plain: Vec<_> = held
        .iter()
        .filter(|(app_id, _)| app_id.starts_with('s'))
        .collect();
    if plain.is_empty() {
        return Ok(false);
    }
    plain.sort();
    let (app_id, (id, _)) = plain[(pick % plain.len() as u64) as usize];
    if device.call("markRead", json!({"ids": [id]})).await.is_err() {
        return Ok(false);
    }
    ledger
        .lock()
        .unwrap()
        .read
        .entry(user.to_owned())
        .or_default()
        .insert(app_id.clone());
    Ok(true)
}

/// Samples the deployment every `every` until `stop` and once after.
async fn sample(
    service: Arc<AtomicU32>,
    store: std::path::PathBuf,
    devices: Devices,
    samples: Arc<Mutex<Vec<Sample>>>,
    every: Duration,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    loop {
        let last = tokio::select! {
            () = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        let mut agent = check::Reading::default();
        for device in devices.iter() {
            let Ok(device) = device.try_lock() else {
                continue;
            };
            if let Some(reading) = device.process.pid().and_then(check::read_process) {
                agent.rss_kib = agent.rss_kib.max(reading.rss_kib);
                agent.fds = agent.fds.max(reading.fds);
                agent.threads = agent.threads.max(reading.threads);
            }
        }
        // While the node is down (killed, not started again yet) there is nothing to read.
        let pid = service.load(Ordering::Relaxed);
        if let Some(reading) = check::read_process(pid).filter(|_| pid != 0) {
            samples.lock().unwrap().push(Sample {
                at: started.elapsed(),
                service: reading,
                store_bytes: check::size_of(&store),
                agent,
            });
        }
        if last {
            return;
        }
    }
}
