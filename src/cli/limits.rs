//! `tidings service` limit flags: every limit of the service as a flag with a
//! `TIDINGS_*` environment override, applied over the defaults of
//! [`crate::service::Settings`]. `docs/limits.md` has the table.

use std::time::Duration;

use crate::service::Settings;

/// The service's limits, each optional (unset keeps the default).
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Limits (docs/limits.md)")]
pub struct LimitArgs {
    /// Open HTTP connections at most; upgraded channels count under --max-channels
    /// [default: 10000].
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Time for a request's headers, and for an idle keep-alive connection [default: 10s].
    #[arg(long, env = "TIDINGS_HEADER_TIMEOUT", value_name = "TIME", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Time for a request's body [default: 30s].
    #[arg(long, env = "TIDINGS_BODY_TIMEOUT", value_name = "TIME", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Password checks running at once [default: one per core].
    #[arg(long, env = "TIDINGS_PASSWORD_CHECKS", value_name = "N")]
    pub password_checks: Option<usize>,
    /// Password checks waiting at most; more are answered 503 [default: 8].
    #[arg(long, env = "TIDINGS_PASSWORD_QUEUE", value_name = "N")]
    pub password_queue: Option<usize>,
    /// Failed sign-ins of one user name from one address before it is slowed [default: 5].
    #[arg(long, env = "TIDINGS_FREE_FAILURES_PER_USER", value_name = "N")]
    pub free_failures_per_user: Option<u32>,
    /// Failed sign-ins from one address before it is slowed [default: 20].
    #[arg(long, env = "TIDINGS_FREE_FAILURES_PER_ADDRESS", value_name = "N")]
    pub free_failures_per_address: Option<u32>,
    /// Channels one device may hold; a newer one replaces the oldest [default: 2].
    #[arg(long, env = "TIDINGS_CHANNELS_PER_DEVICE", value_name = "N")]
    pub channels_per_device: Option<usize>,
    /// Channels open at most, of all devices [default: 9000].
    #[arg(long, env = "TIDINGS_MAX_CHANNELS", value_name = "N")]
    pub max_channels: Option<usize>,
    /// How often a failed store (full disk) checks whether it can write again [default: 5s].
    #[arg(long, env = "TIDINGS_RECOVERY_INTERVAL", value_name = "TIME", value_parser = parse_duration)]
    pub recovery_interval: Option<Duration>,
    /// How long a refresh token stays valid unused [default: 90d].
    #[arg(long, env = "TIDINGS_REFRESH_TOKEN_TTL", value_name = "TIME", value_parser = parse_duration)]
    pub refresh_token_ttl: Option<Duration>,
    /// Devices one user may have signed in at once [default: 100].
    #[arg(long, env = "TIDINGS_MAX_DEVICES_PER_USER", value_name = "N")]
    pub max_devices_per_user: Option<usize>,
    /// Disk space kept in reserve to survive a full disk, in MiB [default: 16].
    #[arg(long, env = "TIDINGS_STORE_RESERVE_MIB", value_name = "MIB")]
    pub store_reserve_mib: Option<u64>,
}

impl LimitArgs {
    /// Sets every given limit on `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        let sign_in = &mut settings.sign_in;
        set(&mut settings.max_connections, self.max_connections);
        set(&mut settings.header_timeout, self.header_timeout);
        set(&mut settings.body_timeout, self.body_timeout);
        set(&mut sign_in.workers, self.password_checks);
        set(&mut sign_in.queue, self.password_queue);
        set(&mut sign_in.free_per_user, self.free_failures_per_user);
        set(
            &mut sign_in.free_per_address,
            self.free_failures_per_address,
        );
        set(&mut settings.channels_per_device, self.channels_per_device);
        set(&mut settings.max_channels, self.max_channels);
        set(&mut settings.recovery_interval, self.recovery_interval);
        set(&mut settings.refresh_token_ttl, self.refresh_token_ttl);
        set(
            &mut settings.max_devices_per_user,
            self.max_devices_per_user,
        );
        if let Some(mib) = self.store_reserve_mib {
            settings.store_reserve = mib << 20;
        }
    }
}

fn set<T: Copy>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// `500ms`, `10s`, `2m`, `1h`, `90d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let amount: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 10s, 2m, 1h or 90d"))?;
    let millis = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_millis(amount.saturating_mul(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_or_without_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3w").unwrap_err().contains("unknown unit"));
    }
}
