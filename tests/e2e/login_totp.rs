//! `meshfs login` to an account with a second factor (#15 item 10):
//! the administrator turns it on with `meshd user totp enable`, and the
//! login then needs a current code of the authenticator app (computed here
//! from the printed otpauth:// link, as the app would) or a recovery code.
//! A script gives it with `--password-stdin --totp-stdin` (password, then
//! code, one line each); without a terminal and without `--totp-stdin`
//! the login says in one sentence what is missing and how to give it.
//! The account's owner turns it on and off from a signed-in device with
//! `meshfs totp enable|disable`.

use mesh_e2e::{PASSWORD, Server, meshd_bin, meshfs_bin};
use std::io::{BufRead, BufReader, Read, Write};
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

#[test]
fn the_owner_turns_totp_on_and_off_from_a_signed_in_device() {
    let server = Server::start();
    server.add_user(ANN);
    let home = tempfile::tempdir().unwrap();
    let login = |home: &Path, extra: &[&str], input: &str| {
        let args = [
            &["login", server.url(), "--email", ANN, "--password-stdin"],
            extra,
        ]
        .concat();
        meshfs(home, &args, input)
    };
    let out = login(home.path(), &[], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr(&out));

    // Without a terminal and without --totp-stdin there is no way to give
    // the first code: one sentence, before the server is asked anything.
    let out = meshfs(
        home.path(),
        &["totp", "enable", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!out.status.success());
    let said = stderr(&out);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("--totp-stdin"), "{said}");
    assert!(out.stdout.is_empty(), "no key was made");
    let other = tempfile::tempdir().unwrap();
    let out = login(other.path(), &[], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "a key not confirmed changes nothing");

    // The password, then the code of the link it printed.
    let mut child = Command::new(meshfs_bin())
        .arg("--home")
        .arg(home.path())
        .args(["totp", "enable", "--password-stdin", "--totp-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{PASSWORD}").unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let uri = (&mut stdout)
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("otpauth://"))
        .expect("an otpauth:// link");
    let app = Totp::from_url(&uri).unwrap();
    writeln!(stdin, "{}", current_code(&app)).unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    let recovery_codes: Vec<&str> = rest.lines().filter_map(|l| l.strip_prefix("  ")).collect();
    assert_eq!(recovery_codes.len(), 10, "{rest}");

    // On: a login needs the code now.
    let third = tempfile::tempdir().unwrap();
    let out = login(third.path(), &[], &format!("{PASSWORD}\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("needs an authentication code"));
    let out = login(
        third.path(),
        &["--totp-stdin"],
        &format!("{PASSWORD}\n{}\n", recovery_codes[0]),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Off, with the password and a recovery code.
    let out = meshfs(
        home.path(),
        &["totp", "disable", "--password-stdin", "--totp-stdin"],
        &format!("{PASSWORD}\n{}\n", recovery_codes[1]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let fourth = tempfile::tempdir().unwrap();
    let out = login(fourth.path(), &[], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
}
