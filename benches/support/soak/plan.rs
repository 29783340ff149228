//! The soak's schedule of faults: made from the seed alone, so a seed replays the same
//! faults at the same moments (the load's own randomness is seeded from it too).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One thing done to the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the service node, and start it again after `down`.
    KillService { down: Duration },
    /// SIGKILL device `device`'s agent, and start it again after `down`.
    KillAgent { device: usize, down: Duration },
    /// Mark one notification read from device `device` (a random one it holds).
    Read { device: usize, pick: u64 },
    /// Post `count` notifications at once.
    Burst { count: usize },
    /// The app deletes group `g<group>` of device `device`'s user.
    DeleteGroup { device: usize, group: u8 },
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
        }
    }
}

/// Every kind, in the report's order.
pub const KINDS: [&str; 5] = [
    "service SIGKILLed and restarted",
    "agent SIGKILLed and restarted",
    "marked read on a device",
    "burst of posts",
    "group deleted by the app",
];

/// The faults of a run of `length` over `devices` devices, in time order, from `seed`.
pub fn schedule(seed: u64, length: Duration, devices: usize) -> Vec<(Duration, Fault)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    // Mean intervals: a node every 15 s, an agent every 4 s, a read every 1.5 s, a
    // burst every 12 s, a group delete every 6 s; each drawn from half to one and a half
    // of that. (A new kind goes last, so the kinds before it keep their moments.)
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
    faults.sort_by_key(|(at, _)| *at);
    faults
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
