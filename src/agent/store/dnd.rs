//! Do-not-disturb, kept in meta (`Mdnd`) so it survives a restart: the time it ends,
//! or `i64::MAX` for "until turned off"; absent means off.

use crate::protocol::Timestamp;
use crate::protocol::local::Dnd;

use super::{AgentStore, AgentStoreError, u64_of};

const DND: &[u8] = b"Mdnd";

impl AgentStore {
    /// The do-not-disturb state as of `now` (an `until` in the past is off).
    pub fn dnd(&self, now: Timestamp) -> Result<Dnd, AgentStoreError> {
        let Some(bytes) = self.cache.get(DND)? else {
            return Ok(Dnd::default());
        };
        let until = u64_of(&bytes)?.cast_signed();
        Ok(match until {
            i64::MAX => Dnd {
                on: true,
                until: None,
            },
            millis if millis > now.as_millis() => Dnd {
                on: true,
                until: Some(Timestamp::from_millis(millis)),
            },
            _ => Dnd::default(),
        })
    }

    /// Turns do-not-disturb on (until `until`, or until turned off) or off; durable on
    /// return.
    pub async fn set_dnd(&self, on: bool, until: Option<Timestamp>) -> Result<(), AgentStoreError> {
        if on {
            let end = until.map_or(i64::MAX, Timestamp::as_millis);
            self.cache.insert(DND, &end.cast_unsigned().to_be_bytes())?;
        } else {
            self.cache.remove(DND)?;
        }
        self.flush().await?;
        Ok(())
    }
}
