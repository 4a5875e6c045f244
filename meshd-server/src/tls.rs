//! How `meshd serve` talks to clients: plain HTTP (loopback, or off it
//! only with `--insecure-http`), or HTTPS with the certificate and key
//! given (`--tls-cert`, `--tls-key`, PEM files), or HTTPS with a
//! self-signed certificate made on first start and kept in the data
//! directory (0600), whose SHA-256 fingerprint clients pin.

use anyhow::Context;
use mesh_cli::fingerprint::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// What `serve` was asked for.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain HTTP; `insecure` when off loopback (warned about at start).
    Plain { insecure: bool },
    /// HTTPS with these PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// HTTPS with the data directory's self-signed certificate.
    SelfSigned,
}

impl Transport {
    /// The transport for `listen`: HTTPS with `cert` and `key` when given,
    /// plain HTTP on loopback or with `insecure_http`, else self-signed.
    pub fn choose(
        listen: SocketAddr,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        insecure_http: bool,
    ) -> anyhow::Result<Transport> {
        match (cert, key, insecure_http) {
            (Some(_), _, true) | (_, Some(_), true) => anyhow::bail!(
                "--insecure-http asks for plain HTTP, --tls-cert and --tls-key for HTTPS: give one or the other"
            ),
            (Some(cert), Some(key), false) => Ok(Transport::Files { cert, key }),
            (Some(_), None, _) | (None, Some(_), _) => {
                anyhow::bail!("--tls-cert and --tls-key go together: give both files, or neither")
            }
            (None, None, _) if listen.ip().is_loopback() => {
                Ok(Transport::Plain { insecure: false })
            }
            (None, None, true) => Ok(Transport::Plain { insecure: true }),
            (None, None, false) => Ok(Transport::SelfSigned),
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, Transport::Plain { .. })
    }

    /// Refuses a `--public-url` that would send people to plain HTTP
    /// while meshd serves HTTPS.
    pub fn check_public_url(&self, public_url: Option<&str>) -> anyhow::Result<()> {
        if let Some(url) = public_url
            && self.is_tls()
            && url.starts_with("http://")
        {
            anyhow::bail!(
                "meshd serves HTTPS on this address, but --public-url {url} would send people to plain HTTP: \
                 give an https:// URL, or --insecure-http to serve plain HTTP off loopback"
            );
        }
        Ok(())
    }
}

/// The certificate meshd serves and what clients pin of it.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub fingerprint: Fingerprint,
}

/// The self-signed certificate's files inside the data directory.
fn self_signed_paths(data: &Path) -> (PathBuf, PathBuf) {
    (data.join("tls-cert.pem"), data.join("tls-key.pem"))
}

/// Loads the certificate `transport` names, making the self-signed one
/// (for `names`: host names and addresses) when there is none yet.
pub fn load(transport: &Transport, data: &Path, names: Vec<String>) -> anyhow::Result<Option<Tls>> {
    let (cert, key) = match transport {
        Transport::Plain { .. } => return Ok(None),
        Transport::Files { cert, key } => (cert.clone(), key.clone()),
        Transport::SelfSigned => {
            let (cert, key) = self_signed_paths(data);
            if !cert.exists() || !key.exists() {
                make_self_signed(&cert, &key, names)?;
            }
            (cert, key)
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    let first = chain
        .first()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    let fingerprint = Fingerprint::of(first);
    let private = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("reading the TLS key {}", key.display()))?;
    // aws-lc-rs, the provider reqwest uses too (ring is in the build
    // through lettre, so none is chosen by default).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate",
                cert.display(),
                key.display()
            )
        })?;
    // meshd speaks HTTP/1.1 only (see `connections`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    }))
}

fn make_self_signed(cert: &Path, key: &Path, names: Vec<String>) -> anyhow::Result<()> {
    let made =
        rcgen::generate_simple_self_signed(names).context("making a self-signed certificate")?;
    mesh_cli::private::write_atomic(key, made.signing_key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key.display()))?;
    mesh_cli::private::write_atomic(cert, made.cert.pem().as_bytes())
        .with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate");
    Ok(())
}

/// The URL clients reach `addr` at when no `--public-url` is given: the
/// host name when listening on every address, else the address itself.
pub fn default_public_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match mesh_cli::host::name() {
        Some(host) if addr.ip().is_unspecified() => format!("{scheme}://{host}:{}", addr.port()),
        _ => format!("{scheme}://{addr}"),
    }
}

/// The names a self-signed certificate for `addr` is made for.
pub fn names(addr: SocketAddr) -> Vec<String> {
    let mut names: Vec<String> = mesh_cli::host::name().into_iter().collect();
    names.push("localhost".into());
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names
}
