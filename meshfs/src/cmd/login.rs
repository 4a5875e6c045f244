//! `meshfs login` and `meshfs logout`: enrolling this device with a server
//! (its token goes to the keyring or a private file, see
//! `crate::local::credentials`) — with the account's authentication code
//! too when the server asks for one —, and signing it out again — on the server
//! (revoking its token, so it leaves the account's devices) and here.
//!
//! A logout that cannot reach the server still forgets the token here
//! (that is what was asked for on this machine) but fails: the token
//! stays valid on the server until the device is removed from another one
//! (`meshfs devices remove NAME`), and a script must not take that for a
//! complete sign-out.

use anyhow::Context;
use mesh_cli::fingerprint::Fingerprint;

use crate::cli::FromStdin;
use crate::client::RemoteError;
use crate::client::http::HttpApi;
use crate::cmd::session::Session;
use crate::cmd::trust;
use crate::local::credentials;
use crate::local::daemon;
use crate::local::home::{Account, Home};
use crate::local::password;
use mesh_protocol::api::ErrorCode;

pub fn login(
    home: &Home,
    url: &str,
    email: &str,
    stdin: FromStdin,
    device_name: Option<String>,
    fingerprint: Option<Fingerprint>,
) -> anyhow::Result<()> {
    let password = password::read(stdin.password_stdin)?;
    if password.is_empty() {
        // No account has an empty password: asking the server would only
        // count a failed sign-in against this address.
        anyhow::bail!("{}", no_password(url, email));
    }
    let device_name = device_name.unwrap_or_else(hostname);
    let mut request = mesh_protocol::api::TokenRequest {
        email: email.to_owned(),
        password,
        device_name: device_name.clone(),
        public_key: None,
        totp: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pin = runtime.block_on(trust::pin_for(url, fingerprint))?;
    let answer = match runtime.block_on(HttpApi::enroll(url, &request, pin)) {
        // The password was right; the account has a second factor.
        Err(RemoteError::Refused {
            code: ErrorCode::SecondFactorRequired,
            ..
        }) => {
            request.totp = Some(authentication_code(url, email, stdin)?);
            runtime.block_on(HttpApi::enroll(url, &request, pin))
        }
        answer => answer,
    }
    .with_context(|| format!("signing in to {url}"))?;
    home.create()?;
    let account = Account {
        server: url.trim_end_matches('/').to_owned(),
        email: email.to_owned(),
        user_id: answer.user_id.to_string(),
        device_id: answer.device_id.to_string(),
        device_name: device_name.clone(),
        fingerprint: pin.map(|pin| pin.to_string()),
    };
    let vault = credentials::store(home, &account, &answer.token)?;
    home.save_account(&account)?;
    println!(
        "{}",
        mesh_cli::display::escaped(&format!(
            "signed in to {url} as {email}, device {device_name:?}; token kept in {vault}"
        ))
    );
    Ok(())
}

pub fn logout(home: &Home) -> anyhow::Result<()> {
    let account = home.require_account()?;
    if let Some((pid, at)) = daemon::running(home) {
        anyhow::bail!(
            "this device is mounted at {} (process {pid}); unmount it first with `meshfs unmount {}`, so that nothing it has not pushed yet is lost",
            at.display(),
            at.display()
        );
    }
    let on_server = revoke_this_device(home, &account);
    credentials::forget(home, &account)?;
    std::fs::remove_file(home.account_file())?;
    let name = &account.device_name;
    let said = match on_server {
        Ok(true) => format!(
            "signed out {} from {}: device {name:?} is no longer one of the account's devices",
            account.email, account.server
        ),
        Ok(false) => format!(
            "signed out {} from {}: the server had signed device {name:?} out already",
            account.email, account.server
        ),
        Err(e) => anyhow::bail!(
            "{}",
            mesh_cli::display::escaped(&format!(
                "forgot this device's sign-in here, but could not sign it out on {} ({e}): \
                 device {name:?} stays listed, and its token valid, until you remove it from \
                 another device with `meshfs devices remove {name}`",
                account.server
            ))
        ),
    };
    println!("{}", mesh_cli::display::escaped(&said));
    Ok(())
}

/// What to say when no password was read, and how to give one.
fn no_password(url: &str, email: &str) -> String {
    use std::io::IsTerminal;
    let how = format!(
        "put it on the first line of standard input with `meshfs login {url} --email {email} --password-stdin`, or run `meshfs login` on a terminal to type it"
    );
    let what = if std::io::stdin().is_terminal() {
        "no password was typed"
    } else {
        "no password could be read: standard input is not a terminal and held no password"
    };
    format!("{what}; {how}")
}

/// The account's authentication code, or one of its recovery codes: from
/// standard input with `--totp-stdin`, else typed on a terminal.
fn authentication_code(url: &str, email: &str, stdin: FromStdin) -> anyhow::Result<String> {
    CodeAsk {
        prompt: "Authentication code (or a recovery code): ",
        from_stdin: stdin.totp_stdin,
        what: &format!("{email} needs an authentication code to sign in"),
        how: &format!(
            "put it on the line after the password with `meshfs login {url} --email {email} \
             --password-stdin --totp-stdin`, or run `meshfs login` on a terminal to type it"
        ),
    }
    .read()
}

/// Asking for a one-time code: the next line of standard input with
/// `from_stdin`, else typed on the terminal after `prompt`. Without
/// either, or when none is given, the error says `what` needs it and
/// `how` to give it.
pub(crate) struct CodeAsk<'a> {
    pub prompt: &'a str,
    pub from_stdin: bool,
    pub what: &'a str,
    pub how: &'a str,
}

impl CodeAsk<'_> {
    /// Fails now, before anything is asked of the server, if there will
    /// be no way to read the code.
    pub fn check_possible(&self) -> anyhow::Result<()> {
        use std::io::IsTerminal;
        if self.from_stdin || std::io::stdin().is_terminal() {
            Ok(())
        } else {
            Err(self.no_terminal())
        }
    }

    fn no_terminal(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "{} and standard input is not a terminal to type it on; {}",
            self.what,
            self.how
        )
    }

    pub fn read(&self) -> anyhow::Result<String> {
        let code = mesh_cli::password::read_code(self.prompt, self.from_stdin)
            .context("reading the authentication code")?;
        match code {
            Some(code) if !code.trim().is_empty() => Ok(code),
            Some(_) => anyhow::bail!("{} and none was given; {}", self.what, self.how),
            None => Err(self.no_terminal()),
        }
    }
}

/// Revokes this device's token on the server; false when the server had
/// revoked it already.
fn revoke_this_device(home: &Home, account: &Account) -> anyhow::Result<bool> {
    let device = account
        .device_id
        .parse()
        .with_context(|| format!("{} is damaged", home.account_file().display()))?;
    let session = Session::open(home)?;
    match session.run(session.remote.revoke_device(device)) {
        Ok(()) => Ok(true),
        Err(RemoteError::SignedOut | RemoteError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// This machine's host name: a new device's name unless one is given.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end])
            && !name.is_empty()
        {
            return name.to_owned();
        }
    }
    "this device".into()
}
