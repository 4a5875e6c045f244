//! The quickstart's install step, `scripts/install-local`, run as a user
//! would against the binaries under test into a temporary home: the
//! binaries, man pages and completions land under `~/.local` with the
//! right modes, `~/.local/bin/meshfs --help` runs, and it says whether
//! `~/.local/bin` is on PATH and how to put it there.

use mesh_e2e::{meshd_bin, meshfs_bin, xtask_bin};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The man pages and completions `xtask docs` writes, in `dir`.
fn docs(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    let status = Command::new(xtask_bin())
        .arg("docs")
        .arg(&docs)
        .status()
        .expect("running xtask docs");
    assert!(status.success(), "xtask docs failed: {status}");
    docs
}

/// A directory holding `meshd` and `meshfs` as links to the binaries
/// under test (which MESHD_BIN and MESHFS_BIN may put apart).
fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("build");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(meshd_bin(), bin.join("meshd")).unwrap();
    std::os::unix::fs::symlink(meshfs_bin(), bin.join("meshfs")).unwrap();
    bin
}

/// Runs `scripts/install-local BIN DOCS` with HOME=`home`, this PATH and
/// the environment given.
fn install(home: &Path, path: &str, env: &[(&str, &Path)], args: &[&Path]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-local");
    // Through bash, as the quickstart runs it: whatever mode git gave it.
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(args)
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("PREFIX")
        .env_remove("DESTDIR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running scripts/install-local")
}

fn mode(path: &Path) -> u32 {
    let metadata = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} was not installed: {e}", path.display()));
    assert!(metadata.is_file(), "{} is not a file", path.display());
    metadata.permissions().mode() & 0o7777
}

/// Checks what landed under `local` (a `~/.local`).
fn assert_installed(local: &Path) {
    for name in ["meshd", "meshfs"] {
        assert_eq!(mode(&local.join("bin").join(name)), 0o755, "{name}");
        let share = local.join("share");
        for file in [
            share.join(format!("man/man1/{name}.1")),
            share.join(format!("bash-completion/completions/{name}")),
            share.join(format!("zsh/site-functions/_{name}")),
            share.join(format!("fish/vendor_completions.d/{name}.fish")),
        ] {
            assert_eq!(mode(&file), 0o644, "{}", file.display());
        }
    }
    for page in ["meshfs-mount.1", "meshfs-login.1", "meshd-serve.1"] {
        assert_eq!(
            mode(&local.join("share/man/man1").join(page)),
            0o644,
            "{page}"
        );
    }
    let help = Command::new(local.join("bin/meshfs"))
        .arg("--help")
        .output()
        .expect("running the installed meshfs");
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("Usage: meshfs"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
}

#[test]
fn install_local_puts_binaries_man_pages_and_completions_under_dot_local() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, bin) = (docs(dir.path()), bin_dir(dir.path()));
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let local = home.join(".local");

    // ~/.local/bin not on PATH: it says so and how to add it.
    let output = install(&home, "/usr/bin:/bin", &[], &[&bin, &docs]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_installed(&local);
    let bin_shown = local.join("bin").display().to_string();
    assert!(
        said.contains(&format!("{bin_shown} is not on your PATH")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "echo 'export PATH=\"{bin_shown}:$PATH\"' >> ~/.bashrc"
        )),
        "{said}"
    );

    // Again, with it on PATH: the files are replaced and it says it is found.
    let path = format!("{bin_shown}:/usr/bin:/bin");
    let output = install(&home, &path, &[], &[&bin, &docs]);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(&format!("{bin_shown} is on your PATH")),
        "{said}"
    );
    assert_installed(&local);

    // DESTDIR stages the same tree under it.
    let stage = dir.path().join("stage");
    let output = install(
        &home,
        "/usr/bin:/bin",
        &[("DESTDIR", &stage)],
        &[&bin, &docs],
    );
    assert!(output.status.success());
    let staged = PathBuf::from(format!("{}{}", stage.display(), local.display()));
    assert_installed(&staged);
}

#[test]
fn install_local_without_a_build_says_what_to_build_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let empty = dir.path().join("nothing-built");
    std::fs::create_dir(&empty).unwrap();
    let output = install(&home, "/usr/bin:/bin", &[], &[&empty, &docs]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("install-local: "), "{stderr}");
    assert!(stderr.contains("build it first"), "{stderr}");
    assert!(!home.join(".local").exists(), "something was installed");

    let output = install(&home, "/usr/bin:/bin", &[], &[&empty]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: scripts/install-local"));
}
