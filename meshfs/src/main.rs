//! The `meshfs` binary: hands over to `meshfs::cmd`.

fn main() -> std::process::ExitCode {
    meshfs::cmd::main()
}
