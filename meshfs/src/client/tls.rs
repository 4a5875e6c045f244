//! Which server certificates a device trusts: those the system's roots
//! vouch for, or — when the account pins one (`meshfs login
//! --fingerprint`, or trusted on first use) — exactly the certificate with
//! that SHA-256 fingerprint, whatever its names and signer. A pinned
//! device refuses any other certificate, saying that it changed.

use mesh_cli::fingerprint::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The provider reqwest uses (ring is in the build too, so none is the
/// process default).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration that trusts only the certificate `pin`.
pub fn pinned(pin: Fingerprint) -> rustls::ClientConfig {
    config(Arc::new(Pinned {
        expect: Some(pin),
        seen: Mutex::new(None),
        algorithms: provider().signature_verification_algorithms,
    }))
}

/// A configuration that accepts any certificate and notes its
/// fingerprint, to show it to the user before anything is sent; with it
/// the fingerprint the server presented.
pub fn noting() -> (rustls::ClientConfig, Arc<Pinned>) {
    let verifier = Arc::new(Pinned {
        expect: None,
        seen: Mutex::new(None),
        algorithms: provider().signature_verification_algorithms,
    });
    (config(verifier.clone()), verifier)
}

fn config(verifier: Arc<Pinned>) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Checks the server's certificate against a pinned fingerprint (or, with
/// none, accepts it and notes its fingerprint); the handshake's signatures
/// are checked as usual.
#[derive(Debug)]
pub struct Pinned {
    expect: Option<Fingerprint>,
    seen: Mutex<Option<Fingerprint>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    /// The fingerprint of the last certificate the server presented.
    pub fn seen(&self) -> Option<Fingerprint> {
        *self.seen.lock().expect("the fingerprint lock")
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        *self.seen.lock().expect("the fingerprint lock") = Some(seen);
        match self.expect {
            Some(pin) if pin != seen => {
                let said = format!(
                    "the server's certificate changed: it presents SHA-256 fingerprint {seen}, \
                     not {pin}, which this device trusts; refusing to talk to it. If the server's \
                     administrator replaced the certificate, sign in again with \
                     `meshfs login URL --fingerprint NEW`"
                );
                tracing::error!("{said}");
                Err(rustls::Error::General(said))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
