//! The `tidings` binary: the command line, with logs and errors on standard error
//! (`cli::entry`).

fn main() {
    tidings::cli::entry::main(tidings::cli::entry::Launch::Console);
}
