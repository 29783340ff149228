//! Whether a bench measures (`cargo bench`) or only smoke-runs: `cargo test
//! --all-targets` runs every bench once, briefly, in a debug build, and what it prints
//! then must not read as a measurement.

/// True under `cargo bench`; otherwise says, once, that this is a smoke run.
pub fn measuring(bench: &str) -> bool {
    let measuring = std::env::args().any(|a| a == "--bench");
    if !measuring {
        println!(
            "SMOKE RUN of the {bench} bench (a debug build, briefly): its figures are not measurements; `cargo bench --bench {bench}` measures"
        );
    }
    measuring
}
