//! One soak run: the deployment set up, the load and the schedule of faults run side by
//! side with the sampler, then everything started again and left to converge, and the
//! devices compared with the ledger.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Options;
use super::check::{self, Sample, Violations};
use super::deploy::{Deployment, Device, Service, deploy};
use super::disk::Disk;
use super::load::{self, Command, Ledger, Target};
use super::pg::Cluster;
use super::plan::{self, Fault};
use super::proxy::{Link, Proxy};
use super::settle::{converge, purged};
use super::watch::{self, Watcher};

#[path = "faults.rs"]
mod faults;

/// A process that did not start again after its kill.
const STUCK: &str = "a process did not start again";

/// Tries at signing a revoked device in again, a second apart.
const SIGN_IN_TRIES: u32 = 20;

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
    nodes: Vec<Service>,
    /// The PostgreSQL cluster the nodes share (none on sled).
    cluster: Option<Arc<Cluster>>,
    /// The sled node's own disk.
    disk: Option<Arc<Disk>>,
    /// The proxy in front of each node, for the devices.
    proxies: Vec<Arc<Proxy>>,
    /// The first node's process, which the sampler reads.
    service_pid: Arc<AtomicU32>,
    devices: Devices,
    users: Vec<String>,
    ledger: Arc<Mutex<Ledger>>,
    bursts: mpsc::UnboundedSender<Command>,
    restarts: JoinSet<()>,
    stuck: Arc<Mutex<Violations>>,
    done: Vec<(&'static str, u64)>,
    /// Where the app posts (a device signed in again gets a new UNSID there).
    target: Arc<Target>,
    /// The runner's own device of each user, and what they found wrong.
    watchers: Vec<Watcher>,
    watch_found: Arc<Mutex<Violations>>,
    watch_stop: CancellationToken,
}

/// Sets up, runs and checks one soak.
pub async fn soak(options: &Options) -> Result<Outcome, String> {
    let dir = workdir()?;
    let proxy_stop = CancellationToken::new();
    let Deployment {
        nodes,
        proxies,
        cluster,
        disk,
        app,
        users,
        devices,
    } = deploy(options, dir.path(), &proxy_stop).await?;
    let _proxies_end = proxy_stop.drop_guard();
    let urls: Vec<String> = proxies.iter().map(|proxy| proxy.url.clone()).collect();
    let target = target(&nodes, &app, &devices);
    let devices: Devices = Arc::new(devices.into_iter().map(tokio::sync::Mutex::new).collect());
    let scope = plan::Scope {
        devices: devices.len(),
        nodes: nodes.len(),
        database: cluster.is_some(),
        disk: disk.is_some(),
        web: web_sessions(options),
    };
    let schedule = plan::schedule(options.seed, options.length, &scope);
    std::fs::write(dir.path().join("schedule.txt"), plan::listing(&schedule))
        .map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let (bursts, burst_rx) = mpsc::unbounded_channel();
    let watch_found: Arc<Mutex<Violations>> = Arc::default();
    let watch_stop = CancellationToken::new();
    let watchers = watchers(options, &urls, &watch_found, &watch_stop).await?;
    let store = cluster
        .as_ref()
        .map_or_else(|| nodes[0].data_dir.clone(), |cluster| cluster.data());
    let mut run = Faulting {
        service_pid: Arc::new(AtomicU32::new(nodes[0].process.pid().unwrap_or(0))),
        nodes,
        proxies,
        cluster,
        disk,
        devices,
        users,
        ledger: Arc::default(),
        bursts,
        restarts: JoinSet::new(),
        stuck: Arc::default(),
        done: plan::KINDS.map(|kind| (kind, 0u64)).to_vec(),
        target: target.clone(),
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
        store,
        run.devices.clone(),
        run.ledger.clone(),
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

/// Where the app posts: the nodes themselves, as `app` (`app add`'s answer), to each
/// device's UNSID.
fn target(nodes: &[Service], app: &serde_json::Value, devices: &[Device]) -> Arc<Target> {
    let text = |key: &str| app[key].as_str().unwrap_or_default().to_owned();
    Arc::new(Target {
        urls: nodes.iter().map(|node| node.url.clone()).collect(),
        client_id: text("clientId"),
        client_secret: text("clientSecret"),
        unsids: Mutex::new(
            devices
                .iter()
                .map(|d| (d.user.clone(), d.unsid.clone()))
                .collect(),
        ),
    })
}

/// The runner's own device of each user, user `n` starting on node `n` (through its
/// proxy at `urls[n]`), until `stop`; every [`WEB_EVERY`]th a web session.
async fn watchers(
    options: &Options,
    urls: &[String],
    found: &Arc<Mutex<Violations>>,
    stop: &CancellationToken,
) -> Result<Vec<Watcher>, String> {
    let mut watchers = Vec::new();
    for (n, user) in users(options).iter().enumerate() {
        let (found, stop) = (found.clone(), stop.clone());
        let who = (user.as_str(), n % WEB_EVERY == 0);
        watchers.push(watch::start(urls, n, who, "contoso.com", found, stop).await?);
    }
    Ok(watchers)
}

/// Every fifth user's runner device (from the first) is a web session.
const WEB_EVERY: usize = 5;

/// How many of the runner's devices are web sessions.
fn web_sessions(options: &Options) -> usize {
    options.users.div_ceil(WEB_EVERY)
}

/// Where the run's processes keep their files: removed at the end, unless
/// `TIDINGS_SOAK_KEEP` is set (to read their logs and the schedule afterwards).
fn workdir() -> Result<tempfile::TempDir, String> {
    let mut dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    if std::env::var_os("TIDINGS_SOAK_KEEP").is_some() {
        dir.disable_cleanup(true);
        println!("soak: keeping {}", dir.path().display());
    }
    Ok(dir)
}

/// The users a run deploys, by name.
pub fn users(options: &Options) -> Vec<String> {
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
            let pid = self.nodes[0].process.pid().unwrap_or(0);
            self.service_pid.store(pid, Ordering::Relaxed);
            match applied {
                Ok(true) => {
                    let kind = fault.kind();
                    if let Some(slot) = self.done.iter_mut().find(|(k, _)| *k == kind) {
                        slot.1 += 1;
                    }
                }
                Ok(false) => {}
                // A node or the database did not start again: nothing more can be learnt
                // from this run.
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
        let all_up = self.nodes.iter().all(|node| node.process.is_running());
        let (mut violations, held, converged) = if all_up {
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
        for node in &mut self.nodes {
            node.process.kill().await;
        }
        for device in self.devices.iter() {
            device.lock().await.process.kill().await;
        }
        Ok((violations, held, converged_in, purged_in))
    }

    /// Does one fault; false when there was nothing to do (the agent was down already).
    async fn apply(&mut self, fault: Fault) -> Result<bool, String> {
        match fault {
            Fault::KillService { node, down } => {
                let node = &mut self.nodes[node];
                node.process.kill().await;
                tokio::time::sleep(down).await;
                node.restart().await?;
            }
            Fault::CutLinks { node } => self.proxies[node].cut(),
            Fault::FillDisk { lasting } => return self.fill_disk(lasting),
            Fault::StallLinks { node, lasting } => self.link_for(node, Link::Stalled, lasting),
            Fault::SlowLinks { node, by, lasting } => {
                self.link_for(node, Link::Slow(by), lasting);
            }
            Fault::RestartDatabase { down } => {
                let Some(cluster) = self.cluster.clone() else {
                    return Ok(false);
                };
                let stopping = cluster.clone();
                tokio::task::spawn_blocking(move || stopping.stop_server())
                    .await
                    .map_err(|e| format!("stopping PostgreSQL: {e}"))?;
                tokio::time::sleep(down).await;
                tokio::task::spawn_blocking(move || cluster.start_server())
                    .await
                    .map_err(|e| format!("starting PostgreSQL: {e}"))?;
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
                    // A device revoked meanwhile is started by its sign-in.
                    if !held.process.is_running()
                        && !held.revoked
                        && let Err(e) = held.restart().await
                    {
                        stuck.lock().unwrap().add(STUCK, || e);
                    }
                });
            }
            Fault::Revoke { device, down } => return self.revoke(device, down).await,
            Fault::Read { device, pick } => {
                let user = &self.users[device];
                return faults::read(&self.devices[device], user, pick, &self.ledger).await;
            }
            Fault::Act {
                device,
                action,
                pick,
            } => {
                let user = &self.users[device];
                let device = &self.devices[device];
                return faults::act(device, user, (action, pick), &self.ledger).await;
            }
            Fault::WebAct {
                session,
                action,
                pick,
            } => {
                let Some(watcher) = self.watchers.iter().filter(|w| w.web).nth(session) else {
                    return Ok(false);
                };
                return faults::web_act(watcher, (action, pick), &self.ledger).await;
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

/// Samples the deployment every `every` until `stop` and once after.
async fn sample(
    service: Arc<AtomicU32>,
    store: std::path::PathBuf,
    devices: Devices,
    ledger: Arc<Mutex<Ledger>>,
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
                kept: ledger.lock().unwrap().kept(),
                agent,
            });
        }
        if last {
            return;
        }
    }
}
