//! What `meshd` and `meshfs` share as command-line programs: settings read
//! from a TOML configuration file, logging, text made safe to print, man
//! pages and shell
//! completions generated from the clap definitions, telling systemd that a
//! service is ready, and opening and migrating a local SQLite database.

pub mod display;
pub mod docs;
pub mod logging;
pub mod notify;
pub mod settings;
pub mod sqlite;
