//! What `meshd` and `meshfs` share as command-line programs: settings read
//! from a TOML configuration file, logging, text made safe to print, man
//! pages, shell completions and grouped help generated from the clap
//! definitions, telling systemd that a
//! service is ready, opening and migrating a local SQLite database,
//! keeping state files private to their user, reading passwords, TLS
//! certificate fingerprints, the host name, and sizes in bytes.

pub mod display;
pub mod docs;
pub mod fingerprint;
pub mod help;
pub mod host;
pub mod logging;
pub mod notify;
pub mod password;
pub mod private;
pub mod qr;
pub mod settings;
pub mod size;
pub mod sqlite;
