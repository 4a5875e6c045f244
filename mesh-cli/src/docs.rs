//! Man pages and shell completions, generated from a program's clap
//! definition so that they never drift from `--help`.

use clap::Command;
use clap_complete::Shell;
use std::path::Path;

/// Writes the man pages of `cmd` and of each of its subcommands
/// (`meshd.1`, `meshd-serve.1`, ...) to `dir/man/`, and its completions to
/// `dir/completions/`: `NAME.bash`, `_NAME` (zsh) and `NAME.fish`.
pub fn write(cmd: Command, dir: &Path) -> std::io::Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(cmd.clone(), &man)?;
    let mut cmd = cmd;
    let name = cmd.get_name().to_owned();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, &name, &completions)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    #[test]
    fn writes_man_pages_and_completions() {
        let cmd = Command::new("demo")
            .about("A demo")
            .arg(Arg::new("listen").long("listen").env("DEMO_LISTEN"))
            .subcommand(Command::new("serve").about("Serve"));
        let dir = tempfile::tempdir().unwrap();
        super::write(cmd, dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/demo.1")).unwrap();
        assert!(page.contains("DEMO_LISTEN"), "{page}");
        assert!(dir.path().join("man/demo-serve.1").is_file());
        for file in ["demo.bash", "_demo", "demo.fish"] {
            let text = std::fs::read_to_string(dir.path().join("completions").join(file)).unwrap();
            assert!(text.contains("serve"), "{file}: {text}");
        }
    }
}
