//! Secrets read from standard input (`--password-stdin`, `--client-secret-stdin`): the
//! first line, without its line ending; an empty one is an error that names the flag.

use std::io::BufRead;

use anyhow::{Context, bail};

/// The first line of standard input as the `what` given with `flag`.
pub fn secret_line(what: &str, flag: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("no {what} on standard input ({flag})");
    }
    Ok(secret)
}
