//! A command's connection to the server: this device's account and token,
//! and a small runtime to make the calls on (for `share`, `devices`, …).

use crate::client::RemoteError;
use crate::client::http::HttpApi;
use crate::local::credentials;
use crate::local::home::Home;

pub struct Session {
    pub remote: HttpApi,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    pub fn open(home: &Home) -> anyhow::Result<Session> {
        let account = home.require_account()?;
        let token = credentials::load(home, &account)?;
        Ok(Session {
            remote: HttpApi::new(&account.server, token, account.pin()?),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Runs one call to the server to its end.
    pub fn run<T>(
        &self,
        call: impl Future<Output = Result<T, RemoteError>>,
    ) -> Result<T, RemoteError> {
        self.runtime.block_on(call)
    }
}
