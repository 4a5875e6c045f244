//! Build-time tasks. `cargo run -p xtask -- docs DIR` writes the man pages
//! and shell completions of `meshd` and `meshfs`, generated from their clap
//! definitions, to `DIR/meshd/` and `DIR/meshfs/` for the Debian packages
//! (`scripts/build-packages`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [task, dir] = args.as_slice() else {
        eprintln!("usage: xtask docs DIR");
        return ExitCode::from(2);
    };
    if task != "docs" {
        eprintln!("xtask: unknown task {task:?}; the one task is `docs DIR`");
        return ExitCode::from(2);
    }
    let dir = PathBuf::from(dir);
    for (name, cmd) in [
        ("meshd", meshd_server::cli::command()),
        ("meshfs", meshfs::cli::command()),
    ] {
        if let Err(e) = mesh_cli::docs::write(cmd, &dir.join(name)) {
            eprintln!("xtask: writing the {name} docs to {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
