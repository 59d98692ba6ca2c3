//! `varco`: the identity broker. See [`broker::cli`].

fn main() -> std::process::ExitCode {
    broker::cli::main()
}
