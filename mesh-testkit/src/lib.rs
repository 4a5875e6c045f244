//! What the tests that run the real `meshd` share — meshd's own
//! integration tests (`meshd-server/tests`) and the end-to-end tests
//! (`tests/`, package `mesh-e2e`):
//!
//! * [`Meshd`] runs `meshd serve` on a temporary data directory and a free
//!   port of 127.0.0.1, with its log in a file, and stops it by process id
//!   when dropped, also when a test panics; [`add_user`] runs
//!   `meshd user add`.
//! * [`smtp::SmtpReceiver`] is a small SMTP server that records what meshd
//!   sends it.
//!
//! Each caller says which `meshd` binary to run (its own build of it) and
//! keeps its own conveniences on top: an HTTP client for the server's
//! tests, mounts for the end-to-end tests.

mod meshd;
pub mod smtp;

pub use meshd::{Meshd, add_user, meshd_command};
