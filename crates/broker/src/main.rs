//! `varco`: the identity broker. See [`broker::cli`].

/// mimalloc instead of glibc's malloc (feature `mimalloc`, on by default): fewer page faults
/// and less CPU per login, measured in docs/PERFORMANCE.md ("The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    broker::cli::main()
}
