//! The config keys of one table as command-line flags (`tidings service --max-channels
//! 500`), made from `config::keys`: each flag is the key's name with dashes, checked by
//! the key's kind as it is parsed, and documented with its default and its
//! environment variable.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use clap::{Arg, ArgMatches, Command, FromArgMatches};

use crate::config::{self, Table};

/// A table whose keys become flags.
pub trait KeyTable {
    /// The table.
    const TABLE: Table;
    /// The help heading of its flags.
    const HEADING: &'static str;
}

/// `[service]`'s keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceKeys;

impl KeyTable for ServiceKeys {
    const TABLE: Table = Table::Service;
    const HEADING: &'static str = "Settings (also in config.toml [service]; docs/config.md)";
}

/// `[agent]`'s keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentKeys;

impl KeyTable for AgentKeys {
    const TABLE: Table = Table::Agent;
    const HEADING: &'static str = "Settings (also in config.toml [agent]; docs/config.md)";
}

/// The flags given for `T`'s keys: key name → value as given.
#[derive(Debug, Clone, Default)]
pub struct KeyFlags<T> {
    /// The given flags, by key name.
    pub given: BTreeMap<&'static str, String>,
    table: PhantomData<T>,
}

impl<T: KeyTable> clap::Args for KeyFlags<T> {
    fn augment_args(mut command: Command) -> Command {
        command = command.next_help_heading(T::HEADING);
        for key in config::keys::of(T::TABLE) {
            let default = key.default.unwrap_or(key.unset);
            let kind = key.kind;
            let arg = Arg::new(key.name)
                .long(key.long())
                .value_name(kind.value_name())
                .help(format!(
                    "{} [default: {default}] [env: {}]",
                    key.help,
                    key.env()
                ))
                .value_parser(move |text: &str| kind.parse(text).map(|_| text.to_owned()));
            command = command.arg(arg);
        }
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl<T: KeyTable> FromArgMatches for KeyFlags<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self {
            given: BTreeMap::new(),
            table: PhantomData,
        };
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for key in config::keys::of(T::TABLE) {
            if let Some(value) = matches.get_one::<String>(key.name) {
                self.given.insert(key.name, value.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        keys: KeyFlags<ServiceKeys>,
    }

    #[test]
    fn every_key_is_a_flag_checked_as_it_is_parsed() {
        let probe = Probe::try_parse_from(["probe", "--max-channels", "5", "--body-timeout", "2m"])
            .unwrap();
        assert_eq!(probe.keys.given["max_channels"], "5");
        assert_eq!(probe.keys.given["body_timeout"], "2m");
        assert_eq!(probe.keys.given.len(), 2);
        let bad = Probe::try_parse_from(["probe", "--header-timeout", "soon"]).unwrap_err();
        assert!(bad.to_string().contains("is not a duration"), "{bad}");
    }
}
