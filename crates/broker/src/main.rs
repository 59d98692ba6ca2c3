//! `varco`: the identity broker. See [`broker::cli`].

/// mimalloc instead of glibc's malloc (feature `mimalloc`, on by default): ~8 % less CPU per
/// ACS login for ~13 MiB more resident memory, measured in docs/PERFORMANCE.md ("The
/// allocator, and what each remaining candidate is worth", "The heavy pool on threads of its
/// own"). Built
/// without transparent huge pages (`no_thp`): with them the flat state tables became resident
/// in full at the first logins.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    broker::cli::main()
}
