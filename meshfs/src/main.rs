//! `meshfs`: the Mesh client. The mount itself is built in its own issue; for
//! now the binary only answers `--version` and `--help`.

use clap::Parser;

/// Mount a Mesh as a filesystem.
#[derive(Parser)]
#[command(name = "meshfs", version, about)]
struct Cli {}

fn main() {
    Cli::parse();
}
