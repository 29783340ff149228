//! The soak's schedule of faults: made from the seed alone, so a seed replays the same
//! faults at the same moments (the load's own randomness is seeded from it too).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::web::Action;

/// One thing done to the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL service node `node`, and start it again after `down`.
    KillService { node: usize, down: Duration },
    /// SIGKILL device `device`'s agent, and start it again after `down`.
    KillAgent { device: usize, down: Duration },
    /// Mark one notification read from device `device` (a random one it holds).
    Read { device: usize, pick: u64 },
    /// Post `count` notifications at once.
    Burst { count: usize },
    /// The app deletes group `g<group>` of device `device`'s user.
    DeleteGroup { device: usize, group: u8 },
    /// Stop PostgreSQL (fast: sessions ended, as an administrator's restart does) and
    /// start it again after `down`.
    RestartDatabase { down: Duration },
    /// Cut every link open through the proxy to node `node`.
    CutLinks { node: usize },
    /// Forward nothing through the proxy to node `node` for `lasting`.
    StallLinks { node: usize, lasting: Duration },
    /// Hold back each chunk through the proxy to node `node` by `by`, for `lasting`.
    SlowLinks {
        node: usize,
        by: Duration,
        lasting: Duration,
    },
    /// Revoke device `device` (`tidings admin device revoke`), and after `down` sign
    /// it in again: a new device of the same user, with a new UNSID.
    Revoke { device: usize, down: Duration },
    /// Fill the sled node's disk, and free it after `lasting`.
    FillDisk { lasting: Duration },
    /// Read, dismiss or delete (`action`) one notification with the CLI of device
    /// `device` (which asks its agent); `pick` picks which.
    Act {
        device: usize,
        action: Action,
        pick: u64,
    },
    /// Read, dismiss or delete one notification in web session `session` (an index
    /// among the runner's web sessions), through the device API as the page does.
    WebAct {
        session: usize,
        action: Action,
        pick: u64,
    },
}

impl Fault {
    /// The kind's name in the report.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::KillService { .. } => "service SIGKILLed and restarted",
            Fault::KillAgent { .. } => "agent SIGKILLed and restarted",
            Fault::Read { .. } => "marked read on a device",
            Fault::Burst { .. } => "burst of posts",
            Fault::DeleteGroup { .. } => "group deleted by the app",
            Fault::RestartDatabase { .. } => "PostgreSQL restarted",
            Fault::CutLinks { .. } => "links to a node cut",
            Fault::StallLinks { .. } => "links to a node stalled",
            Fault::SlowLinks { .. } => "links to a node slowed",
            Fault::Revoke { .. } => "device revoked and signed in again",
            Fault::FillDisk { .. } => "node's disk filled, then freed",
            Fault::Act { .. } => "read / dismissed / deleted with the CLI",
            Fault::WebAct { .. } => "read / dismissed / deleted in a web session",
        }
    }
}

/// Every kind, in the report's order.
pub const KINDS: [&str; 13] = [
    "service SIGKILLed and restarted",
    "agent SIGKILLed and restarted",
    "marked read on a device",
    "burst of posts",
    "group deleted by the app",
    "PostgreSQL restarted",
    "links to a node cut",
    "links to a node stalled",
    "links to a node slowed",
    "device revoked and signed in again",
    "node's disk filled, then freed",
    "read / dismissed / deleted with the CLI",
    "read / dismissed / deleted in a web session",
];

/// What the schedule acts on.
pub struct Scope {
    pub devices: usize,
    pub nodes: usize,
    /// Whether there is a PostgreSQL server to restart.
    pub database: bool,
    /// Whether the node's disk can be filled (a tmpfs of its own).
    pub disk: bool,
    /// The runner's web sessions.
    pub web: usize,
}

/// The faults of a run of `length` over `scope`, in time order, from `seed`.
pub fn schedule(seed: u64, length: Duration, scope: &Scope) -> Vec<(Duration, Fault)> {
    let Scope {
        devices,
        nodes,
        database,
        disk,
        web,
    } = *scope;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    // Mean intervals: a node every 15 s, an agent every 4 s, a read every 1.5 s, a
    // burst every 12 s, a group delete every 6 s, PostgreSQL every 20 s, links cut every
    // 10 s, stalled every 20 s, slowed every 20 s, a device revoked every 20 s, the disk
    // filled every 30 s, an action with the CLI every 4 s, one in a web session every
    // 5 s; each drawn from half to one and a half of that. (A new kind goes last, so
    // the kinds before it keep their moments.)
    let mut every = |mean_ms: u64, make: &mut dyn FnMut(&mut StdRng) -> Fault| {
        let mut at = Duration::ZERO;
        loop {
            at += Duration::from_millis(rng.random_range(mean_ms / 2..=mean_ms * 3 / 2));
            if at >= length {
                break;
            }
            let fault = make(&mut rng);
            faults.push((at, fault));
        }
    };
    every(15_000, &mut |rng| Fault::KillService {
        node: rng.random_range(0..nodes),
        down: Duration::from_millis(rng.random_range(100..=2_000)),
    });
    every(4_000, &mut |rng| Fault::KillAgent {
        device: rng.random_range(0..devices),
        down: Duration::from_millis(rng.random_range(100..=3_000)),
    });
    every(1_500, &mut |rng| Fault::Read {
        device: rng.random_range(0..devices),
        pick: rng.random(),
    });
    every(12_000, &mut |rng| Fault::Burst {
        count: rng.random_range(20..=200),
    });
    every(6_000, &mut |rng| Fault::DeleteGroup {
        device: rng.random_range(0..devices),
        group: rng.random_range(0..3),
    });
    if database {
        every(20_000, &mut |rng| Fault::RestartDatabase {
            down: Duration::from_millis(rng.random_range(100..=2_000)),
        });
    }
    every(10_000, &mut |rng| Fault::CutLinks {
        node: rng.random_range(0..nodes),
    });
    every(20_000, &mut |rng| Fault::StallLinks {
        node: rng.random_range(0..nodes),
        lasting: Duration::from_millis(rng.random_range(1_000..=8_000)),
    });
    every(20_000, &mut |rng| Fault::SlowLinks {
        node: rng.random_range(0..nodes),
        by: Duration::from_millis(rng.random_range(20..=300)),
        lasting: Duration::from_millis(rng.random_range(2_000..=10_000)),
    });
    every(20_000, &mut |rng| Fault::Revoke {
        device: rng.random_range(0..devices),
        down: Duration::from_millis(rng.random_range(100..=3_000)),
    });
    if disk {
        every(30_000, &mut |rng| Fault::FillDisk {
            lasting: Duration::from_millis(rng.random_range(2_000..=10_000)),
        });
    }
    every(4_000, &mut |rng| Fault::Act {
        device: rng.random_range(0..devices),
        action: Action::from_pick(rng.random()),
        pick: rng.random(),
    });
    if web > 0 {
        every(5_000, &mut |rng| Fault::WebAct {
            session: rng.random_range(0..web),
            action: Action::from_pick(rng.random()),
            pick: rng.random(),
        });
    }
    faults.sort_by_key(|(at, _)| *at);
    faults
}

/// A schedule as text, a fault a line (`schedule.txt` of a kept run).
pub fn listing(faults: &[(Duration, Fault)]) -> String {
    use std::fmt::Write as _;
    faults.iter().fold(String::new(), |mut text, (at, fault)| {
        let _ = writeln!(text, "{:>9.3} s  {fault:?}", at.as_secs_f64());
        text
    })
}

/// A digest of a schedule, printed in the report: two runs with the same seed (and
/// length and devices) print the same one.
pub fn digest(faults: &[(Duration, Fault)]) -> u64 {
    use std::hash::{Hash, Hasher};
    // FNV-1a: the standard hasher's output may change between Rust releases.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    for (at, fault) in faults {
        at.hash(&mut hasher);
        format!("{fault:?}").hash(&mut hasher);
    }
    hasher.finish()
}
