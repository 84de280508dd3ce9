//! A private CA on the fly: a CA certificate (PEM, for `SSL_CERT_FILE` or
//! a component's `ca_file`) and a server configuration for `localhost` and
//! `127.0.0.1` signed by it, also as PEM files for a real service's TLS.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA and a server certificate it signed.
#[derive(Clone)]
pub struct PrivateCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// A TLS server configuration presenting the signed certificate.
    pub server: Arc<rustls::ServerConfig>,
    /// The server certificate alone, PEM (for a service's own TLS files).
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateCa")
    }
}

impl PrivateCa {
    /// A fresh CA and a server certificate for `localhost`, `127.0.0.1` and
    /// `127.0.0.2`.
    pub fn new() -> Self {
        Self::for_names(&["localhost", "127.0.0.1", "127.0.0.2"])
    }

    /// A fresh CA and a server certificate for these names and addresses.
    pub fn for_names(names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "obs-upgrade test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        let cert = params.signed_by(&key, &ca).expect("server cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        PrivateCa {
            ca_pem: ca.pem(),
            server: Arc::new(server),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `path` and returns it.
    pub fn write_ca(&self, path: &std::path::Path) -> std::path::PathBuf {
        std::fs::write(path, &self.ca_pem).expect("write ca");
        path.to_owned()
    }
}

impl Default for PrivateCa {
    fn default() -> Self {
        Self::new()
    }
}
