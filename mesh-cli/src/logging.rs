//! Logging set-up: tracing to standard error, filtered the `RUST_LOG` way.
//! Each program takes the filter as a setting (`--log`, `RUST_LOG`, or
//! `log` in its configuration file).

use tracing_subscriber::EnvFilter;

/// Checks a log filter (`info`, `meshfs=debug,warn`, ...); a clap value
/// parser, so that a bad filter is refused on the command line and by a
/// configuration check alike.
pub fn filter(s: &str) -> Result<String, String> {
    EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?} is not a log filter: {e}"))
}

/// Sends tracing output to standard error, filtered by `filter` (checked
/// by [`filter`] when it was parsed), or by `default` when none was given.
/// Colours only go to a terminal, not to a log file or the journal.
///
/// A log line that cannot be written (standard error is a file on a full
/// disk, say) is dropped: the program goes on. By default the subscriber
/// would report the failure with `eprintln!` — to the same standard error,
/// which panics, and a panic while unwinding aborts.
pub fn init(filter: Option<&str>, default: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter.unwrap_or(default)))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
}
