//! `meshfs totp enable` and `meshfs totp disable`: this account's second
//! factor, turned on and off from this signed-in device. Enabling asks
//! for the password, shows the new key's link (and its QR code on a
//! terminal), asks for the code the app then shows — the server turns
//! the key on only with it — and shows the recovery codes; disabling asks
//! for the password and a current code. Neither code is ever logged.

use anyhow::Context;
use mesh_cli::display::escaped;
use std::io::IsTerminal;

use crate::cli::FromStdin;
use crate::cmd::login::CodeAsk;
use crate::cmd::session::Session;
use crate::local::home::Home;
use crate::local::password;

pub fn enable(home: &Home, stdin: FromStdin) -> anyhow::Result<()> {
    let email = home.require_account()?.email;
    let session = Session::open(home)?;
    let ask = CodeAsk {
        prompt: "Code the app shows now: ",
        from_stdin: stdin.totp_stdin,
        what: "the new key is turned on only with a code the app shows for it",
        how: "run `meshfs totp enable` on a terminal, or give the code on the line after the \
              password with `--password-stdin --totp-stdin`",
    };
    ask.check_possible()?;
    let password = password::read(stdin.password_stdin)?;
    let key = session
        .run(session.remote.begin_totp(&password))
        .context("asking the server for a new authenticator key")?;
    println!(
        "add this to an authenticator app (or type the key {}):",
        key.secret
    );
    println!("{}", key.uri);
    if std::io::stdout().is_terminal() {
        println!(
            "{}",
            mesh_cli::qr::for_terminal(&key.uri).map_err(anyhow::Error::msg)?
        );
    }
    let code = ask.read()?;
    session
        .run(session.remote.confirm_totp(&code))
        .context("turning the new authenticator key on")?;
    println!(
        "{} now needs a code of the app to sign in; recovery codes, each good for one sign-in \
         without the app (shown only now; keep them somewhere safe):",
        escaped(&email)
    );
    for code in &key.recovery_codes {
        println!("  {}", escaped(code));
    }
    Ok(())
}

pub fn disable(home: &Home, stdin: FromStdin) -> anyhow::Result<()> {
    let email = home.require_account()?.email;
    let session = Session::open(home)?;
    let password = password::read(stdin.password_stdin)?;
    let code = CodeAsk {
        prompt: "Authentication code (or a recovery code): ",
        from_stdin: stdin.totp_stdin,
        what: "turning the second factor off needs a current code of the app",
        how: "run `meshfs totp disable` on a terminal, or give the code on the line after the \
              password with `--password-stdin --totp-stdin`",
    }
    .read()?;
    session
        .run(session.remote.disable_totp(&password, &code))
        .context("turning the second factor off")?;
    println!("{} signs in with the password alone again", escaped(&email));
    Ok(())
}
