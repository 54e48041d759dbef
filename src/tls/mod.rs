//! TLS: the certificate latchkey serves HTTPS with, and whom it trusts when it
//! talks HTTPS to an upstream.
//!
//! This module owns reading PEM files (`[server.tls] cert, key`,
//! `server.upstream_ca`, `apps[].ca_file`; and the one check that
//! `redis.ca_file` and `mail.ca_file` hold certificates, `read_ca_pem`), the certificate resolver that
//! lets a renewed certificate take over without a restart and without
//! dropping a connection, and building rustls configs. It uses the process's
//! one crypto provider (aws-lc-rs, installed by `main`). Accepting
//! connections is `server`'s; forwarding is `upstream`'s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the served certificate chain and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate and key that were read and found to match.
#[derive(Clone)]
pub struct LoadedCert {
    pub files: CertFiles,
    pub key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {path}")]
    Certs {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCert { path: PathBuf },
    #[error("cannot read a PEM private key from {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("the certificate in {cert} and the key in {key} cannot be used together")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("a CA certificate in {path} was refused")]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot build the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The installed process-wide provider, else aws-lc-rs (the only one
/// compiled in), so `check` and tests work without `main`'s start-up.
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certs {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the chain and key and checks that the key belongs to the first
/// certificate.
pub fn load_cert(files: &CertFiles) -> Result<LoadedCert, TlsError> {
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Key {
        path: files.key.clone(),
        source,
    })?;
    let key =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Unusable {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    Ok(LoadedCert {
        files: files.clone(),
        key: Arc::new(key),
    })
}

/// What the files looked like when last read: a change in either means
/// read again.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(files: &CertFiles) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [one(&files.cert), one(&files.key)]
}

/// The certificate being served, swapped atomically when the files are
/// renewed. Handshakes in progress keep the key they started with; open
/// connections are untouched.
pub struct CertResolver {
    current: ArcSwap<LoadedCert>,
    /// The stamp of the files last tried, good or bad (a bad file is
    /// reported once, not at every poll).
    tried: Mutex<Stamp>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("files", &self.current.load().files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

impl CertResolver {
    pub fn new(cert: LoadedCert) -> Arc<CertResolver> {
        let tried = stamp(&cert.files);
        Arc::new(CertResolver {
            current: ArcSwap::from_pointee(cert),
            tried: Mutex::new(tried),
        })
    }

    pub fn files(&self) -> CertFiles {
        self.current.load().files.clone()
    }

    /// Serves `cert` from now on (a reloaded config that names files).
    pub fn replace(&self, cert: LoadedCert) {
        let s = stamp(&cert.files);
        self.current.store(Arc::new(cert));
        if let Ok(mut tried) = self.tried.lock() {
            *tried = s;
        }
    }

    /// Reads the current files again. On failure the certificate served so
    /// far stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = self.files();
        let s = stamp(&files);
        if let Ok(mut tried) = self.tried.lock() {
            *tried = s;
        }
        let cert = load_cert(&files)?;
        self.current.store(Arc::new(cert));
        Ok(())
    }

    /// Reads the files again if their modification time or size changed
    /// since they were last tried. `None` when nothing changed.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let files = self.files();
        let now = stamp(&files);
        {
            let Ok(tried) = self.tried.lock() else {
                return None;
            };
            if *tried == now {
                return None;
            }
        }
        Some(self.reload())
    }

    /// Polls the files every `every` and logs what happened, until the
    /// process ends.
    pub fn watch(self: Arc<Self>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let me = self.clone();
                let outcome = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
                match outcome {
                    Ok(Some(Ok(()))) => {
                        tracing::info!(cert = %self.files().cert.display(), "TLS certificate changed on disk; now serving the new one")
                    }
                    Ok(Some(Err(e))) => tracing::error!(
                        error = %explain(&e),
                        "TLS certificate files changed but cannot be used; still serving the previous certificate"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "certificate watcher failed"),
                }
            }
        })
    }
}

/// The HTTPS server config: certificate from `resolver`, HTTP/2 and
/// HTTP/1.1 offered by ALPN.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config for HTTPS upstreams: the CA certificates in `ca_file`
/// only, or the public web roots (Mozilla's, from webpki-roots) when none.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|source| TlsError::BadCa {
                    path: path.to_owned(),
                    source,
                })?;
            }
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The marker every PEM certificate block starts with.
const PEM_CERT_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// Why a CA file for a TLS client of another library (Redis, SMTP) cannot
/// be used. Worded to follow the quoted file name.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot be read: {0}; expected a PEM file of CA certificates")]
    Read(#[source] std::io::Error),
    #[error(
        "holds no PEM certificate; expected a file with \"-----BEGIN CERTIFICATE-----\" blocks"
    )]
    NoCert,
}

/// The bytes of a PEM file of CA certificates, for the clients that parse
/// PEM themselves (redis-rs, lettre): only checked to hold a
/// `-----BEGIN CERTIFICATE-----` block, the library reads the rest.
pub fn read_ca_pem(path: &Path) -> Result<Vec<u8>, CaFileError> {
    let pem = std::fs::read(path).map_err(CaFileError::Read)?;
    if pem
        .windows(PEM_CERT_BEGIN.len())
        .any(|w| w == PEM_CERT_BEGIN)
    {
        Ok(pem)
    } else {
        Err(CaFileError::NoCert)
    }
}

/// The error and its causes on one line, for config problems and logs.
pub fn explain(e: &TlsError) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (CertFiles, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let files = CertFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, cert.der().to_vec())
    }

    fn served(r: &CertResolver) -> Vec<u8> {
        r.current.load().key.cert[0].to_vec()
    }

    #[test]
    fn ca_pem_is_sniffed_for_a_certificate_block() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = write_pair(dir.path(), "ca.test");
        assert!(read_ca_pem(&files.cert).unwrap().starts_with(b"-----BEGIN"));
        assert!(matches!(read_ca_pem(&files.key), Err(CaFileError::NoCert)));
        let missing = dir.path().join("missing.pem");
        let err = read_ca_pem(&missing).unwrap_err();
        assert!(matches!(err, CaFileError::Read(_)));
        assert!(err.to_string().starts_with("cannot be read: "), "{err}");
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = write_pair(dir.path(), "a.test");
        let (b, _) = write_pair(dir.path(), "b.test");
        let mixed = CertFiles {
            cert: a.cert,
            key: b.key,
        };
        assert!(matches!(load_cert(&mixed), Err(TlsError::Unusable { .. })));
    }

    #[test]
    fn changed_files_are_read_again_and_bad_ones_keep_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (files, first) = write_pair(dir.path(), "a.test");
        let resolver = CertResolver::new(load_cert(&files).unwrap());
        assert!(resolver.reload_if_changed().is_none());

        std::fs::write(&files.cert, "not a certificate").unwrap();
        assert!(matches!(
            resolver.reload_if_changed(),
            Some(Err(TlsError::NoCert { .. }))
        ));
        assert_eq!(served(&resolver), first);
        // Reported once, not at every poll.
        assert!(resolver.reload_if_changed().is_none());

        let (renewed, second) = write_pair(dir.path(), "a.test");
        assert_eq!(renewed, files);
        assert!(matches!(resolver.reload_if_changed(), Some(Ok(()))));
        assert_eq!(served(&resolver), second);
    }
}
