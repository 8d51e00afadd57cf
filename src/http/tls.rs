//! TLS in the binary: the certificate and key (PEM files) behind `tls_cert` and `tls_key`, read
//! at start and again on SIGHUP, so a renewed certificate needs no restart. Connections already
//! open keep the configuration they shook hands with; every new one takes the current one.
//!
//! ALPN offers HTTP/2 first, then HTTP/1.1. The sendfile path is for plain HTTP only: over TLS
//! the bytes must pass through the encryption in this process, so media GETs are streamed in
//! fixed-size chunks by actix (memory stays flat whatever the object's size).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// The server's TLS configuration, swappable while it serves.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads both files; an error names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        Ok(Tls {
            current: RwLock::new(Arc::new(config(cert, key)?)),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Reads the files again. On an error the configuration in use stays, and the error says
    /// why the new one was not taken.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(config(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// An acceptor with the configuration of this moment.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        tokio_rustls::TlsAcceptor::from(current.clone())
    }
}

fn config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls_cert {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "tls_key {}: {e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "tls_cert {} and tls_key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Reloads `tls` on every SIGHUP for as long as it lives, logging what happened.
pub fn reload_on_sighup(tls: std::sync::Weak<Tls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => hup,
        Err(e) => {
            log::warn!("cannot listen for SIGHUP, so the certificate is read only at start: {e}");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(tls) = tls.upgrade() else { return };
            match tls.reload() {
                Ok(()) => log::info!(
                    "SIGHUP: read the certificate again from {}",
                    tls.cert.display()
                ),
                Err(e) => log::error!("SIGHUP: kept the certificate in use: {e}"),
            }
        }
    });
}
