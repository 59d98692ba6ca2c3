//! Standard output of the command-line tools. A reader that goes away early (`varco metadata |
//! head`) is not an error of ours: the rest of the output has no one to read it, so the process
//! ends quietly with status 0 instead of the panic `println!` would raise on a broken pipe.
//!
//! May import: nothing in the crate.

use std::io::{ErrorKind, Write};

/// The exit status of a usage error or a refused configuration (EX_USAGE of sysexits.h).
pub const EX_USAGE: u8 = 64;

/// Writes `text` to standard output. On a closed pipe the process exits 0 (nothing left to
/// do); on any other write failure it exits 1 after saying so on standard error.
pub fn text(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        gone(&e);
    }
}

/// [`text`] followed by a newline.
pub fn line(text: impl std::fmt::Display) {
    self::text(&format!("{text}\n"));
}

/// Ends the process after a failed write to standard output: 0 for a reader that closed
/// the pipe, 1 otherwise.
pub fn gone(e: &std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("varco: cannot write to standard output: {e}");
    std::process::exit(1);
}
