//! The meshd command line: `user add`, `user list`, `feedsync merge`.

mod common;

use common::{PASSWORD, add_user, meshd};
use std::process::Stdio;

#[test]
fn user_add_refuses_duplicates_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann@example.org", PASSWORD).unwrap();
    let err = add_user(dir.path(), "ANN@example.org", PASSWORD).unwrap_err();
    assert!(err.contains("already exists"), "{err}");
    let err = add_user(dir.path(), "not-an-address", PASSWORD).unwrap_err();
    assert!(err.contains("not an e-mail address"), "{err}");
    let err = add_user(dir.path(), "bob@example.org", "short").unwrap_err();
    assert!(err.contains("at least 8"), "{err}");
    let out = meshd()
        .args(["user", "add", "bob@example.org", "--data"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));

    let out = meshd()
        .args(["user", "list", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["email"], "ann@example.org");
    assert_eq!(users[0]["name"], "ann");
}

const LOCAL: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync">
  <title>Todo</title><id>urn:uuid:local</id><updated>2008-01-01T10:00:05Z</updated>
  <entry><title>buy milk and eggs</title><id>urn:uuid:item-1</id><updated>2008-01-01T10:00:05Z</updated>
    <sx:sync id="urn:uuid:item-1" updates="2">
      <sx:history sequence="2" when="2008-01-01T10:00:05Z" by="A"/>
      <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
    </sx:sync></entry>
  <entry><title>only here</title><id>urn:uuid:item-2</id><updated>2008-01-01T10:00:00Z</updated>
    <sx:sync id="urn:uuid:item-2" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/></sx:sync></entry>
</feed>"#;

const INCOMING: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:sx="http://feedsync.org/2007/feedsync">
  <title>Todo</title><id>urn:uuid:incoming</id><updated>2008-01-01T10:00:09Z</updated>
  <entry><title>buy oat milk</title><id>urn:uuid:item-1</id><updated>2008-01-01T10:00:09Z</updated>
    <sx:sync updates="2" id="urn:uuid:item-1">
      <sx:history sequence="2" when="2008-01-01T10:00:09Z" by="B"/>
      <sx:history sequence="1" when="2008-01-01T10:00:00Z" by="A"/>
    </sx:sync></entry>
  <entry><title>new there</title><id>urn:uuid:item-3</id><updated>2008-01-01T10:00:00Z</updated>
    <sx:sync id="urn:uuid:item-3" updates="1"><sx:history sequence="1" when="2008-01-01T10:00:00Z" by="B"/></sx:sync></entry>
</feed>"#;

#[test]
fn feedsync_merge_prints_the_merged_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (local, incoming) = (
        dir.path().join("local.xml"),
        dir.path().join("incoming.xml"),
    );
    std::fs::write(&local, LOCAL).unwrap();
    std::fs::write(&incoming, INCOMING).unwrap();
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(&incoming)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let feed = mesh_protocol::atom::read_feed(&out.stdout).unwrap();
    assert_eq!(feed.id.as_deref(), Some("urn:uuid:local"));
    let titles: Vec<&str> = feed
        .items
        .iter()
        .map(|i| i.current.body.title.as_ref().unwrap().value.as_str())
        .collect();
    assert_eq!(titles, ["buy oat milk", "only here", "new there"]);
    assert_eq!(feed.items[0].conflicts.len(), 1);
    assert_eq!(
        feed.items[0].conflicts[0]
            .body
            .title
            .as_ref()
            .unwrap()
            .value,
        "buy milk and eggs"
    );
}

#[test]
fn feedsync_merge_names_the_bad_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (local, bad) = (dir.path().join("local.xml"), dir.path().join("bad.xml"));
    std::fs::write(&local, LOCAL).unwrap();
    std::fs::write(&bad, "<feed xmlns='http://www.w3.org/2005/Atom'><entry>").unwrap();
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.xml"), "{err}");
    assert!(out.stdout.is_empty());
    let out = meshd()
        .args(["feedsync", "merge"])
        .arg(&local)
        .arg(dir.path().join("absent.xml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.xml"));
}

#[test]
fn config_check_names_the_line_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meshd.toml");
    std::fs::write(
        &file,
        "# meshd\nlisten = \"127.0.0.1:7070\"\nchunk-grace = \"soon\"\n\nlisten_on = 1\n",
    )
    .unwrap();
    let out = meshd()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = |line: usize| format!("{}:{line}: ", file.display());
    assert!(
        stderr.contains(&at(3)) && stderr.contains("'soon'"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&at(5)) && stderr.contains("unknown setting `listen_on`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");

    // The same file refuses to start the server, with the same report.
    let out = meshd()
        .arg("--config")
        .arg(&file)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&at(3)));

    std::fs::write(&file, "listen = \"127.0.0.1:7070\"\nchunk_grace = 60\n").unwrap();
    let out = meshd()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chunk-grace = 60"), "{stdout}");

    // Without a FILE it checks the file --config names.
    let out = meshd()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn settings_come_from_flag_then_environment_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_env) = (dir.path().join("file-data"), dir.path().join("env-data"));
    let file = dir.path().join("meshd.toml");
    std::fs::write(
        &file,
        format!("data = {:?}\n", from_file.display().to_string()),
    )
    .unwrap();
    let add = |email: &str, env_data: Option<&std::path::Path>| {
        let mut command = meshd();
        command
            .env("MESHD_CONFIG", &file)
            .args(["user", "add", email, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        if let Some(d) = env_data {
            command.env("MESHD_DATA", d);
        }
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        assert!(child.wait().unwrap().success());
    };
    add("ann@example.org", None);
    add("bob@example.org", Some(&from_env));
    let list = |data: &std::path::Path| {
        let out = meshd()
            .args(["user", "list", "--data"])
            .arg(data)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(list(&from_file).contains("ann@example.org"));
    assert!(!list(&from_file).contains("bob@example.org"));
    assert!(list(&from_env).contains("bob@example.org"));
}

#[test]
fn every_serve_option_is_a_setting() {
    let cmd = meshd_server::cli::command();
    let serve = cmd.find_subcommand("serve").unwrap();
    for arg in serve.get_arguments().filter(|a| a.get_long().is_some()) {
        if arg.get_long() == Some("help") {
            continue;
        }
        assert!(
            arg.get_env().is_some(),
            "--{} has no environment variable",
            arg.get_long().unwrap()
        );
    }
    let settings = mesh_cli::settings::settings(&cmd);
    for name in [
        "listen",
        "data",
        "chunk-grace",
        "heartbeat",
        "log",
        "max-body",
        "public-url",
        "invitation-ttl",
        "smtp-host",
        "smtp-port",
        "smtp-username",
        "smtp-password",
        "smtp-from",
        "smtp-tls",
        "mail-outbox",
    ] {
        assert!(settings.contains_key(name), "{name} is not a setting");
    }
}

/// The configuration file the package installs as /etc/meshd/meshd.toml
/// documents every setting, and is valid with each of them switched on.
#[test]
fn the_packaged_configuration_documents_every_setting() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/meshd.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let out = meshd().args(["config", "check", shipped]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Uncomment every `#name = value` line: all of it must still check.
    let all_on: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meshd.toml");
    std::fs::write(&file, &all_on).unwrap();
    let out = meshd()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in mesh_cli::settings::settings(&meshd_server::cli::command()).keys() {
        if name != "config" {
            assert!(
                stdout.contains(&format!("  {name} = ")),
                "{name} is not in {shipped}"
            );
        }
    }
}

#[test]
fn config_check_never_prints_the_smtp_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meshd.toml");
    std::fs::write(
        &file,
        "smtp-host = \"smtp.example.org\"\nsmtp-password = \"hunter22 secret\"\n",
    )
    .unwrap();
    let out = meshd()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("smtp-host = smtp.example.org"), "{stdout}");
    assert!(stdout.contains("  smtp-password = "), "{stdout}");
    assert!(!stdout.contains("hunter22"), "{stdout}");
}
