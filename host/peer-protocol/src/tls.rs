//! TLS on both sides of a connection between servers: the certificate a server (`weft serve`,
//! `weft genesis`) presents, and the roots a client trusts (the system's, plus a PEM file of
//! extra CAs: `network.ca_file`, `--ca-file`, `WEFT_CA_FILE`). rustls with the aws-lc-rs
//! provider, the one poem's listener uses, installed once for the process.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Installs the process's TLS provider (aws-lc-rs) unless one is installed.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// A certificate chain and its private key, read and checked at start: the server's TLS
/// configuration.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    /// Where the certificate was read from.
    pub cert_path: PathBuf,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({})", self.cert_path.display())
    }
}

fn read(path: &Path, what: &str, setting: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "{setting} {}: cannot read the {what}: {e}; give the path of a PEM file",
            path.display()
        )
    })
}

impl ServerTls {
    /// Reads `cert` (a PEM chain, the server's certificate first) and `key` (its PEM private
    /// key) and checks that they belong together. Errors are one line naming the setting.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, String> {
        install_provider();
        let cert_pem = read(cert, "certificate", "tls.cert")?;
        let key_pem = read(key, "private key", "tls.key")?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "tls.cert {}: not a PEM certificate chain ({e})",
                    cert.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "tls.cert {}: holds no certificate (-----BEGIN CERTIFICATE-----)",
                cert.display()
            ));
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            format!(
                "tls.key {}: not a PEM private key ({e}); give the key of tls.cert",
                key.display()
            )
        })?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                format!(
                    "tls.key {} does not fit tls.cert {} ({e}); give the certificate's own key",
                    key.display(),
                    cert.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            cert_path: cert.to_path_buf(),
        })
    }

    /// `inner` (e.g. poem's TCP acceptor) with TLS on every connection it accepts. (poem's own
    /// rustls listener loads its configuration lazily, racing the first connection, which it
    /// then drops; this one has its configuration before it accepts anything.)
    pub fn acceptor<A: Acceptor>(&self, inner: A) -> TlsAcceptor<A> {
        TlsAcceptor {
            inner,
            tls: tokio_rustls::TlsAcceptor::from(self.config.clone()),
        }
    }
}

/// An acceptor that speaks TLS on the connections of another ([`ServerTls::acceptor`]). The
/// handshake runs on the connection's first read or write, not in the accept loop, so a slow
/// client holds up nobody else.
pub struct TlsAcceptor<A> {
    inner: A,
    tls: tokio_rustls::TlsAcceptor,
}

impl<A: Acceptor> Acceptor for TlsAcceptor<A> {
    type Io = TlsConnection<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, _) = self.inner.accept().await?;
        Ok((
            TlsConnection(State::Handshaking(Box::new(self.tls.accept(io)))),
            local,
            remote,
            Scheme::HTTPS,
        ))
    }
}

enum State<IO> {
    Handshaking(Box<tokio_rustls::Accept<IO>>),
    Ready(Box<tokio_rustls::server::TlsStream<IO>>),
    Failed,
}

/// One TLS connection, its handshake done on first use.
pub struct TlsConnection<IO>(State<IO>);

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsConnection<IO> {
    /// Drives the handshake; the stream once it is done.
    fn ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<&mut tokio_rustls::server::TlsStream<IO>>> {
        if let State::Handshaking(accept) = &mut self.0 {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.0 = State::Ready(Box::new(stream)),
                Poll::Ready(Err(e)) => {
                    self.0 = State::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match &mut self.0 {
            State::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(std::io::Error::other("the TLS handshake failed"))),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsConnection<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_read(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsConnection<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.ready(cx) {
            Poll::Ready(Ok(s)) => Pin::new(s).poll_flush(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.0 {
            State::Ready(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// The extra CAs of a PEM file (`network.ca_file`), for the HTTP client.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = read(path, "CA certificates", "network.ca_file")?;
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "network.ca_file {}: not PEM certificates ({e})",
                path.display()
            )
        })?;
    if ders.is_empty() {
        return Err(format!(
            "network.ca_file {}: holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    ders.iter()
        .map(|d| {
            reqwest::Certificate::from_der(d.as_ref()).map_err(|e| {
                format!(
                    "network.ca_file {}: a certificate cannot be used ({e})",
                    path.display()
                )
            })
        })
        .collect()
}

/// An HTTP client for calls between servers: no proxy (peers are reached directly), no
/// redirects (a server only calls addresses it was given), the system's roots plus `ca` trusted,
/// `connect_timeout` per connection (each call sets its own total time).
pub fn http_client(
    ca: &[reqwest::Certificate],
    connect_timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    install_provider();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect_timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    for c in ca {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
        .map_err(|e| format!("cannot make the HTTP client: {e}"))
}

/// Whether `e` (or a cause of it) is a TLS certificate refusal, and its words.
pub fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        let text = err.to_string();
        if text.contains("certificate") && (text.contains("invalid") || text.contains("Unknown")) {
            return Some(text);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_and_its_key_load_and_a_stranger_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let wrong = dir.path().join("wrong.pem");
        std::fs::write(&cert, ca.cert.pem()).unwrap();
        std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
        std::fs::write(&wrong, other.signing_key.serialize_pem()).unwrap();
        ServerTls::load(&cert, &key).unwrap();
        let e = ServerTls::load(&cert, &wrong).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        let e = ServerTls::load(&key, &key).unwrap_err();
        assert!(e.starts_with("tls.cert"), "{e}");
        assert_eq!(load_ca_file(&cert).unwrap().len(), 1);
        assert!(load_ca_file(&key)
            .unwrap_err()
            .contains("holds no certificate"));
    }
}
