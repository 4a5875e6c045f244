//! The `meshd` binary: parses the command line and hands over to
//! `meshd_server::cli`.

fn main() -> std::process::ExitCode {
    meshd_server::cli::main()
}
