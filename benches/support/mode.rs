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

/// Whether the part of a bench named `name` is wanted: `TIDINGS_BENCH_ONLY=TEXT`
/// measures only the parts whose name holds `TEXT` (all when unset).
#[allow(dead_code)] // not every bench has parts
pub fn wanted(name: &str) -> bool {
    std::env::var("TIDINGS_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}
