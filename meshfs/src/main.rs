//! The `meshfs` binary: hands over to `meshfs::cli`.

fn main() -> std::process::ExitCode {
    meshfs::cli::main()
}
