//! `meshfs login` and `meshfs logout`: enrolling this device with a server
//! (its token goes to the keyring or a private file, see
//! `crate::local::credentials`) and forgetting it again.

use anyhow::Context;

use crate::client::http::HttpApi;
use crate::local::credentials;
use crate::local::home::{Account, Home};
use crate::local::password;

pub fn login(
    home: &Home,
    url: &str,
    email: &str,
    password_stdin: bool,
    device_name: Option<String>,
) -> anyhow::Result<()> {
    let password = password::read(password_stdin)?;
    let device_name = device_name.unwrap_or_else(hostname);
    let request = mesh_protocol::api::TokenRequest {
        email: email.to_owned(),
        password,
        device_name: device_name.clone(),
        public_key: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime
        .block_on(HttpApi::enroll(url, &request))
        .with_context(|| format!("signing in to {url}"))?;
    home.create()?;
    let account = Account {
        server: url.trim_end_matches('/').to_owned(),
        email: email.to_owned(),
        user_id: answer.user_id.to_string(),
        device_id: answer.device_id.to_string(),
        device_name: device_name.clone(),
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
    credentials::forget(home, &account)?;
    std::fs::remove_file(home.account_file())?;
    println!(
        "{}",
        mesh_cli::display::escaped(&format!(
            "signed out {} from {}",
            account.email, account.server
        ))
    );
    Ok(())
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
