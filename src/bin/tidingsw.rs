//! `tidingsw`: `tidings` without a console window, for Windows, like `pythonw`. The
//! installer's logon `Run` entry and Start menu shortcut start `tidingsw agent`, so no
//! console window opens; logs go to a daily file in the local data directory
//! (`cli::logs::log_dir`). Built with `--features windowless`.

#![cfg_attr(windows, windows_subsystem = "windows")]

fn main() {
    tidings::cli::entry::main(tidings::cli::entry::Launch::Windowless);
}
