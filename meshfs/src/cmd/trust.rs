//! Which certificate `meshfs login` pins for an `https://` server: the one
//! given with `--fingerprint`; none when the system's roots trust the
//! server; else, on a terminal, the one presented if the user says so
//! after seeing its fingerprint (trust on first use). Without a terminal
//! an untrusted certificate is refused with the way to pin it.

use anyhow::Context;
use mesh_cli::fingerprint::Fingerprint;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use crate::client::tls;

/// The fingerprint to pin for `url`, if any.
pub async fn pin_for(url: &str, given: Option<Fingerprint>) -> anyhow::Result<Option<Fingerprint>> {
    if !url.starts_with("https://") {
        if given.is_some() {
            anyhow::bail!(
                "--fingerprint pins an https:// server's certificate, but {url} is not https://"
            );
        }
        return Ok(None);
    }
    if given.is_some() {
        return Ok(given);
    }
    let system = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?;
    let Err(untrusted) = system.get(url).send().await else {
        return Ok(None);
    };
    let (config, noted) = tls::noting();
    let probe = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .tls_backend_preconfigured(config)
        .build()?;
    if probe.get(url).send().await.is_err() {
        // Not the certificate: the server cannot be reached at all.
        return Err(untrusted).with_context(|| format!("reaching {url}"));
    }
    let seen = noted
        .seen()
        .with_context(|| format!("{url} presented no certificate"))?;
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !terminal {
        anyhow::bail!(
            "{url} presents a certificate this system does not trust (SHA-256 fingerprint {seen}); \
             if that is the fingerprint meshd printed when it started, sign in with \
             `meshfs login {url} --fingerprint {seen} …`"
        );
    }
    eprint!(
        "{url} presents a certificate this system does not trust.\n\
         Its SHA-256 fingerprint is\n  {seen}\n\
         Compare it with the one meshd printed when it started (and logs at every start).\n\
         trust this server? [y/N] "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(Some(seen))
    } else {
        anyhow::bail!("did not sign in: the server's certificate was not trusted")
    }
}
