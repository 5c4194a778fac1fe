//! A TLS server with a self-signed certificate (`tests/fixtures/tls`, for `127.0.0.1` and
//! `localhost`), for the checks that the gate never skips certificate verification: it counts
//! the handshakes that completed, so a test can tell a client that refused the certificate
//! from one that went on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A loopback HTTPS server answering every request with one fixed response; stopped when
/// dropped.
pub struct TlsServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    handshakes: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl TlsServer {
    /// Serves `response` (a whole HTTP response) to every request, over TLS.
    pub fn start(response: Vec<u8>) -> TlsServer {
        let dir = super::repo().join("tests/fixtures/tls");
        let cert = CertificateDer::from(std::fs::read(dir.join("cert.der")).unwrap());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            std::fs::read(dir.join("key.der")).unwrap(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the fixture certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the TLS server");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        let response = Arc::new(response);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, counted, response) =
                    (acceptor.clone(), counted.clone(), response.clone());
                tokio::spawn(async move {
                    let Ok(Ok(mut tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return; // the client refused the certificate (or went away)
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                        match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut byte))
                            .await
                        {
                            Ok(Ok(1)) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    let _ = tls.write_all(&response).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer {
            addr,
            handshakes,
            runtime: Some(runtime),
        }
    }

    /// Its base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// GETs `path` with a client that trusts the fixture certificate (so a test can show the
    /// server works, and that only the certificate stops the gate); returns the body.
    pub fn get_trusting(&self, path: &str) -> Vec<u8> {
        let dir = super::repo().join("tests/fixtures/tls");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(
                std::fs::read(dir.join("cert.der")).unwrap(),
            ))
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = self.addr.clone();
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = rt.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls =
                tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
                    .await
                    .expect("a handshake within 10 s")
                    .expect("the fixture certificate is valid for 127.0.0.1");
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
            buf
        });
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        response[split + 4..].to_vec()
    }

    /// TLS handshakes completed so far: 0 while every client refused the certificate.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
