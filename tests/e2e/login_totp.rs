//! `meshfs login` to an account with a second factor (#15 item 10):
//! the administrator turns it on with `meshd user totp enable`, and the
//! login then needs a current code of the authenticator app (computed here
//! from the printed otpauth:// link, as the app would) or a recovery code.
//! A script gives it with `--password-stdin --totp-stdin` (password, then
//! code, one line each); without a terminal and without `--totp-stdin`
//! the login says in one sentence what is missing and how to give it.

use mesh_e2e::{PASSWORD, Server, meshd_bin, meshfs_bin};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::Totp;

const ANN: &str = "ann@example.org";

/// `meshd user totp enable EMAIL`: the app's key from the printed link,
/// and the recovery codes.
fn enable_totp(server: &Server, email: &str) -> (Totp, Vec<String>) {
    let out = mesh_testkit::meshd_command(&meshd_bin())
        .args(["user", "totp", "enable", email, "--data"])
        .arg(server.data())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uri = said.lines().find(|l| l.starts_with("otpauth://")).unwrap();
    let codes = said
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_owned)
        .collect();
    (Totp::from_url(uri).unwrap(), codes)
}

/// The app's code now.
fn current_code(app: &Totp) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    app.generate(now).to_string()
}

/// `meshfs --home HOME ARGS` with `input` on standard input (a pipe, not
/// a terminal).
fn meshfs(home: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(meshfs_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn login_asks_for_the_code_and_a_script_gives_it_on_standard_input() {
    let server = Server::start();
    server.add_user(ANN);
    let (app, recovery_codes) = enable_totp(&server, ANN);
    let home = tempfile::tempdir().unwrap();
    let login = |extra: &[&str], input: &str| {
        let args = [
            &[
                "login",
                server.url(),
                "--email",
                ANN,
                "--password-stdin",
                "--device-name",
                "laptop",
            ],
            extra,
        ]
        .concat();
        meshfs(home.path(), &args, input)
    };

    // No terminal, no --totp-stdin: one sentence saying what to do.
    let out = login(&[], &format!("{PASSWORD}\n"));
    assert!(!out.status.success());
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("meshfs: "), "{said}");
    assert!(
        said.contains("ann@example.org needs an authentication code"),
        "{said}"
    );
    assert!(said.contains("--totp-stdin"), "{said}");
    assert!(!home.path().join("account.json").exists());

    // A wrong code, and no code on the line after the password.
    let out = login(&["--totp-stdin"], &format!("{PASSWORD}\n000000x\n"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wrong or already used authentication code"),
        "{}",
        stderr(&out)
    );
    let out = login(&["--totp-stdin"], &format!("{PASSWORD}\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("none was given"), "{}", stderr(&out));
    assert!(!home.path().join("account.json").exists());

    // The password and the current code, one line each.
    let code = current_code(&app);
    let out = login(&["--totp-stdin"], &format!("{PASSWORD}\n{code}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.path().join("account.json").exists());
    let devices = meshfs(home.path(), &["devices", "--json"], "");
    assert!(devices.status.success(), "{}", stderr(&devices));
    let devices: serde_json::Value = serde_json::from_slice(&devices.stdout).unwrap();
    assert_eq!(devices[0]["name"], "laptop", "{devices}");
    let audit = meshfs(home.path(), &["audit"], "");
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("device \"laptop\" signed in with an authentication code"),
        "{audit}"
    );

    // A recovery code works the same way, once, on another device.
    let phone = tempfile::tempdir().unwrap();
    let recovery = format!("{PASSWORD}\n{}\n", recovery_codes[0]);
    let args = [
        "login",
        server.url(),
        "--email",
        ANN,
        "--password-stdin",
        "--totp-stdin",
        "--device-name",
        "phone",
    ];
    let out = meshfs(phone.path(), &args, &recovery);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = tempfile::tempdir().unwrap();
    let out = meshfs(again.path(), &args, &recovery);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wrong or already used authentication code"),
        "{}",
        stderr(&out)
    );

    // The recovery code is not in the server's log (a six-digit code
    // could be, by chance, in any timestamp).
    assert!(!server.log().contains(&recovery_codes[0]));
}
