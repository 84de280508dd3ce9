//! A Sigstore instance in miniature, for signature tests that cannot reach
//! the real one: a Fulcio-like CA, a certificate transparency log and a
//! Rekor-like transparency log, each with its own key, described by a
//! `trusted_root.json`; and bundles made with them in both formats
//! `cosign sign-blob --bundle` writes: the Sigstore bundle (v0.3, cosign 3)
//! and cosign's legacy bundle (cosign 2).
//!
//! Everything a verifier checks is really there and really signed: a
//! short-lived-style leaf certificate for an identity (URI or email SAN)
//! with the Fulcio issuer extension and an embedded SCT over its
//! precertificate; a `hashedrekord` 0.0.1 log entry for the signature with
//! a signed entry timestamp (SET) and, in the v0.3 bundle, a Merkle
//! inclusion proof and a signed checkpoint; and the message signature over
//! the blob itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
    SigningKey,
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Fulcio's OIDC issuer extension (a DER `UTF8String`).
const FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
/// RFC 6962's embedded SCT list extension.
const CT_PRECERT_SCTS: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];

/// A CA, a CT log and a transparency log, and the trusted root naming them.
pub struct TestSigstore {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_spki: Vec<u8>,
    ct: KeyPair,
    rekor: KeyPair,
    trusted_root: String,
}

impl std::fmt::Debug for TestSigstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestSigstore")
    }
}

fn key_id(spki: &[u8]) -> [u8; 32] {
    Sha256::digest(spki).into()
}

fn sign(key: &KeyPair, data: &[u8]) -> Vec<u8> {
    key.sign(data).expect("ecdsa signature")
}

/// A DER length.
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..0x80 => vec![u8::try_from(len).unwrap()],
        0x80..0x100 => vec![0x81, u8::try_from(len).unwrap()],
        _ => {
            let l = u16::try_from(len).expect("short DER value");
            let [hi, lo] = l.to_be_bytes();
            vec![0x82, hi, lo]
        }
    }
}

/// A DER value: tag, length, contents.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(contents.len()));
    out.extend_from_slice(contents);
    out
}

/// TLS `opaque<0..2^16-1>`.
fn tls16(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// The `TBSCertificate` of a certificate (its first element), as encoded.
fn tbs_of(cert_der: &[u8]) -> Vec<u8> {
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).expect("certificate");
    cert.tbs_certificate.to_der().expect("tbs")
}

fn log_entry(key: &KeyPair, url: &str) -> serde_json::Value {
    let spki = key.subject_public_key_info();
    json!({
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": B64.encode(&spki),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2020-01-01T00:00:00Z"}
        },
        "logId": {"keyId": B64.encode(key_id(&spki))}
    })
}

/// Hashes of RFC 6962 Merkle trees.
fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

impl TestSigstore {
    /// A fresh instance with its own keys (`name` goes into the CA's name).
    pub fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_spki = ca_key.subject_public_key_info();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::OrganizationName, "obs-upgrade tests");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} fulcio"));
        let ca = CertifiedIssuer::self_signed(params, ca_key).expect("ca");
        let ct = KeyPair::generate().expect("ct key");
        let rekor = KeyPair::generate().expect("rekor key");
        let trusted_root = json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log_entry(&rekor, "https://rekor.test.invalid")],
            "certificateAuthorities": [{
                "subject": {"organization": "obs-upgrade tests", "commonName": name},
                "uri": "https://fulcio.test.invalid",
                "certChain": {"certificates": [{"rawBytes": B64.encode(ca.der())}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [log_entry(&ct, "https://ctfe.test.invalid")],
            "timestampAuthorities": []
        });
        TestSigstore {
            ca,
            ca_spki,
            ct,
            rekor,
            trusted_root: serde_json::to_string_pretty(&trusted_root).unwrap(),
        }
    }

    /// The `trusted_root.json` of this instance.
    pub fn trusted_root(&self) -> &str {
        &self.trusted_root
    }

    /// A leaf certificate for `identity` (a URI, or an email when it has
    /// an `@` and no `:`) from `issuer`, with an SCT from the CT log.
    fn leaf(&self, key: &KeyPair, identity: &str, issuer: &str, now_ms: u64) -> Vec<u8> {
        let params = |sct: Option<&[u8]>| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
            p.serial_number = Some(SerialNumber::from_slice(&[0x51, 0x65, 0x73]));
            p.distinguished_name = rcgen::DistinguishedName::new();
            let san = if identity.contains(':') {
                SanType::URI(identity.try_into().expect("identity URI"))
            } else {
                SanType::Rfc822Name(identity.try_into().expect("identity email"))
            };
            p.subject_alt_names = vec![san];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            p.custom_extensions = vec![CustomExtension::from_oid_content(
                FULCIO_ISSUER_V2,
                der(0x0c, issuer.as_bytes()),
            )];
            if let Some(list) = sct {
                p.custom_extensions.push(CustomExtension::from_oid_content(
                    CT_PRECERT_SCTS,
                    der(0x04, list),
                ));
            }
            p
        };
        // The precertificate: the same certificate without the SCT list,
        // whose TBS the CT log signs (RFC 6962 §3.2).
        let pre = params(None)
            .signed_by(key, &self.ca)
            .expect("precertificate");
        let tbs = tbs_of(pre.der());
        let mut signed = vec![0u8, 0u8];
        signed.extend(now_ms.to_be_bytes());
        signed.extend(1u16.to_be_bytes());
        signed.extend(key_id(&self.ca_spki));
        signed.extend(&u32::try_from(tbs.len()).unwrap().to_be_bytes()[1..]);
        signed.extend(&tbs);
        signed.extend(tls16(&[]));
        let ct_spki = self.ct.subject_public_key_info();
        let mut sct = vec![0u8];
        sct.extend(key_id(&ct_spki));
        sct.extend(now_ms.to_be_bytes());
        sct.extend(tls16(&[]));
        sct.extend([4u8, 3u8]);
        sct.extend(tls16(&sign(&self.ct, &signed)));
        let list = tls16(&tls16(&sct));
        params(Some(&list))
            .signed_by(key, &self.ca)
            .expect("certificate")
            .der()
            .to_vec()
    }

    /// Everything a bundle carries for `data` signed as `identity` from
    /// `issuer`, logged a minute ago.
    fn material(&self, data: &[u8], identity: &str, issuer: &str) -> Material {
        let now = jiff::Timestamp::now().as_second() - 60;
        let now_ms = u64::try_from(now).unwrap() * 1000;
        let key = KeyPair::generate().expect("signing key");
        let cert = self.leaf(&key, identity, issuer, now_ms);
        let signature = sign(&key, data);
        let digest: [u8; 32] = Sha256::digest(data).into();
        let cert_pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            B64.encode(&cert)
        );
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
                "signature": {
                    "content": B64.encode(&signature),
                    "publicKey": {"content": B64.encode(cert_pem.as_bytes())}
                }
            }
        });
        // serde_json's maps are sorted: this is the canonical JSON Rekor keeps.
        let body = serde_json::to_vec(&body).unwrap();
        let rekor_spki = self.rekor.subject_public_key_info();
        let log_id = key_id(&rekor_spki);
        // The log holds one other entry before this one: index 1 of 2.
        let sibling = leaf_hash(b"an earlier entry");
        let root = node_hash(&sibling, &leaf_hash(&body));
        let log_index = 1;
        let set_payload = json!({
            "body": B64.encode(&body),
            "integratedTime": now,
            "logID": hex::encode(log_id),
            "logIndex": log_index,
        });
        let set = sign(&self.rekor, &serde_json::to_vec(&set_payload).unwrap());
        let note = format!("rekor.test.invalid - 1\n2\n{}\n", B64.encode(root));
        let mut hint_sig = log_id[..4].to_vec();
        hint_sig.extend(sign(&self.rekor, note.as_bytes()));
        let checkpoint = format!(
            "{note}\n\u{2014} rekor.test.invalid {}\n",
            B64.encode(hint_sig)
        );
        Material {
            cert,
            cert_pem,
            signature,
            digest,
            body,
            now,
            log_index,
            log_id,
            set,
            sibling,
            root,
            checkpoint,
        }
    }

    /// A v0.3 Sigstore bundle (what cosign 3 writes for `--bundle`)
    /// signing `data` as `identity` from `issuer`, logged a minute ago.
    pub fn sign(&self, data: &[u8], identity: &str, issuer: &str) -> Vec<u8> {
        let m = self.material(data, identity, issuer);
        let bundle = json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": B64.encode(&m.cert)},
                "tlogEntries": [{
                    "logIndex": m.log_index.to_string(),
                    "logId": {"keyId": B64.encode(m.log_id)},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                    "integratedTime": m.now.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": B64.encode(&m.set)},
                    "inclusionProof": {
                        "logIndex": m.log_index.to_string(),
                        "rootHash": B64.encode(m.root),
                        "treeSize": "2",
                        "hashes": [B64.encode(m.sibling)],
                        "checkpoint": {"envelope": m.checkpoint}
                    },
                    "canonicalizedBody": B64.encode(&m.body)
                }]
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(m.digest)},
                "signature": B64.encode(&m.signature)
            }
        });
        serde_json::to_vec_pretty(&bundle).unwrap()
    }

    /// cosign's legacy bundle (what cosign 2 writes for `--bundle`, or
    /// cosign 3 with `--new-bundle-format=false`): the signature, the
    /// certificate and Rekor's signed entry timestamp, no inclusion proof.
    pub fn sign_cosign_legacy(&self, data: &[u8], identity: &str, issuer: &str) -> Vec<u8> {
        let m = self.material(data, identity, issuer);
        let bundle = json!({
            "base64Signature": B64.encode(&m.signature),
            "cert": B64.encode(m.cert_pem.as_bytes()),
            "rekorBundle": {
                "SignedEntryTimestamp": B64.encode(&m.set),
                "Payload": {
                    "body": B64.encode(&m.body),
                    "integratedTime": m.now,
                    "logIndex": m.log_index,
                    "logID": hex::encode(m.log_id)
                }
            }
        });
        serde_json::to_vec(&bundle).unwrap()
    }
}

/// What a bundle carries.
struct Material {
    cert: Vec<u8>,
    cert_pem: String,
    signature: Vec<u8>,
    digest: [u8; 32],
    body: Vec<u8>,
    now: i64,
    log_index: u64,
    log_id: [u8; 32],
    set: Vec<u8>,
    sibling: [u8; 32],
    root: [u8; 32],
    checkpoint: String,
}
