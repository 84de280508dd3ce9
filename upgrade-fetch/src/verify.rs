//! Checksum files and the verification ladder.

use std::collections::BTreeMap;

/// Parses a checksum file in GNU format: `<hex>  <name>` or `<hex> *<name>`
/// (binary mode), one per line; blank lines and `#` comments skipped. Names
/// are kept as written, with a leading `./` removed. Only SHA-256 (64 hex
/// digits) lines count.
pub fn parse_checksums(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((hex, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let name = rest.trim_start_matches([' ', '\t']);
        let name = name.strip_prefix('*').unwrap_or(name);
        let name = name.strip_prefix("./").unwrap_or(name);
        if !name.is_empty() {
            out.insert(name.to_owned(), hex.to_ascii_lowercase());
        }
    }
    out
}

/// The hex digest of an API `digest` field (`sha256:<hex>`), if it is SHA-256.
pub fn api_digest(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Verifies a minisign signature (the text of a `.minisig` file) over
/// `data` with `public_key` (`RW…`, or a whole `minisign.pub`); returns who
/// signed, in words, or why it does not verify.
pub fn minisign(public_key: &str, data: &[u8], signature: &[u8]) -> Result<String, String> {
    let key_line = public_key
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or_default();
    let key = minisign_verify::PublicKey::from_base64(key_line)
        .map_err(|e| format!("the configured minisign_key does not read as a public key ({e})"))?;
    let text =
        std::str::from_utf8(signature).map_err(|_| "the signature file is not text".to_owned())?;
    let sig = minisign_verify::Signature::decode(text)
        .map_err(|e| format!("the signature file does not read as a minisign signature ({e})"))?;
    key.verify(data, &sig, false).map_err(|e| match e {
        minisign_verify::Error::UnexpectedKeyId => "it was made by another key".to_owned(),
        minisign_verify::Error::InvalidSignature => {
            "the signature does not match the file's contents".to_owned()
        }
        e => e.to_string(),
    })?;
    let short: String = key_line.chars().take(12).collect();
    Ok(format!("minisign key {short}…"))
}

/// Verifies a keyless Sigstore bundle (cosign's `--bundle`, the JSON of a
/// `.sigstore.json`) over `data`: the certificate chains to the trusted
/// root's Fulcio CA with its embedded SCT, the transparency log entry is
/// included (inclusion proof, signed checkpoint and promise), the signature
/// is over `data`, and the certificate carries `spec`'s identity from its
/// issuer. `trusted_root` is a `trusted_root.json`'s text; `None` is the
/// public-good instance's, built in. Returns who signed, in words, or why
/// it does not verify.
pub fn sigstore(
    spec: &upgrade_core::catalog::SigstoreSpec,
    trusted_root: Option<&str>,
    data: &[u8],
    bundle: &[u8],
) -> Result<String, String> {
    use sigstore_verify::types::Bundle;
    use sigstore_verify::{IdentityMatcher, VerificationPolicy};

    let verifier = sigstore_verifier(trusted_root)?;
    let text = std::str::from_utf8(bundle).map_err(|_| "the bundle is not text".to_owned())?;
    let converted;
    let text = match legacy_cosign_bundle(text) {
        Some(json) => {
            converted = json?;
            converted.as_str()
        }
        None => text,
    };
    let bundle = Bundle::from_json(text)
        .map_err(|e| format!("the signature file does not read as a Sigstore bundle ({e})"))?;
    let wildcard = spec.identity.ends_with('*');
    let policy = if wildcard {
        // The crate matches whole identities; a prefix is checked below on
        // the verified certificate's identity.
        VerificationPolicy::any_identity().require_issuer(spec.issuer.as_str())
    } else {
        VerificationPolicy::new(
            IdentityMatcher::Exact(spec.identity.clone()),
            spec.issuer.as_str(),
        )
    };
    let result = verifier
        .verify(data, &bundle, &policy)
        .map_err(|e| e.to_string())?;
    let identity = result
        .identity()
        .map(|i| i.as_str().to_owned())
        .unwrap_or_default();
    if !result.certificate_verified() || !result.tlog_verified() {
        return Err("the certificate or its log entry was not verified".into());
    }
    if wildcard && !spec.identity_matches(&identity) {
        return Err(format!(
            "it was signed by `{identity}`, not by `{}`",
            spec.identity
        ));
    }
    Ok(format!(
        "Sigstore identity {identity} (issuer {})",
        spec.issuer
    ))
}

/// cosign's own bundle, before the Sigstore bundle format (`cosign
/// sign-blob --bundle` up to cosign 2, or `--new-bundle-format=false`):
/// the signature, the certificate (base64 of its PEM) and Rekor's signed
/// entry timestamp with the entry it covers.
#[derive(serde::Deserialize)]
struct LegacyBundle {
    #[serde(rename = "base64Signature")]
    signature: String,
    cert: String,
    #[serde(rename = "rekorBundle")]
    rekor: LegacyRekor,
}

#[derive(serde::Deserialize)]
struct LegacyRekor {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: LegacyPayload,
}

#[derive(serde::Deserialize)]
struct LegacyPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// The text of a v0.1 Sigstore bundle carrying the same material as a
/// cosign legacy bundle (`None`: `text` is not one), for the verifier to
/// check as it checks any v0.1 bundle: the signed entry timestamp stands
/// for the log's inclusion, as cosign itself verifies such a bundle.
fn legacy_cosign_bundle(text: &str) -> Option<Result<String, String>> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("mediaType").is_some() || value.get("base64Signature").is_none() {
        return None;
    }
    let convert = || -> Result<String, String> {
        let legacy: LegacyBundle = serde_json::from_value(value)
            .map_err(|e| format!("the cosign bundle is incomplete ({e})"))?;
        let pem = B64
            .decode(legacy.cert.trim())
            .map_err(|_| "the cosign bundle's certificate is not base64".to_owned())?;
        let pem = String::from_utf8_lossy(&pem);
        let der: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
            .collect();
        if der.is_empty() {
            return Err("the cosign bundle's certificate is not a PEM certificate".into());
        }
        let body = B64
            .decode(legacy.rekor.payload.body.trim())
            .map_err(|_| "the cosign bundle's log entry is not base64".to_owned())?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| "the cosign bundle's log entry is not JSON".to_owned())?;
        let log_id = hex::decode(&legacy.rekor.payload.log_id)
            .map_err(|_| "the cosign bundle's logID is not hex".to_owned())?;
        let bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
            "verificationMaterial": {
                "x509CertificateChain": {"certificates": [{"rawBytes": der}]},
                "tlogEntries": [{
                    "logIndex": legacy.rekor.payload.log_index.to_string(),
                    "logId": {"keyId": B64.encode(log_id)},
                    "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
                    "integratedTime": legacy.rekor.payload.integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": legacy.rekor.set},
                    "canonicalizedBody": legacy.rekor.payload.body,
                }]
            },
            "messageSignature": {"signature": legacy.signature}
        });
        Ok(bundle.to_string())
    };
    Some(convert())
}

/// Checks a Sigstore `trusted_root.json` (its text): it reads, and every
/// key, certificate and validity window in it is usable.
pub fn sigstore_trusted_root(text: &str) -> Result<(), String> {
    sigstore_verifier(Some(text)).map(|_| ())
}

fn sigstore_verifier(trusted_root: Option<&str>) -> Result<sigstore_verify::Verifier, String> {
    use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
    let root = TrustedRoot::from_json(trusted_root.unwrap_or(SIGSTORE_PRODUCTION_TRUSTED_ROOT))
        .map_err(|e| format!("the Sigstore trusted root does not read ({e})"))?;
    sigstore_verify::Verifier::new(&root)
        .map_err(|e| format!("the Sigstore trusted root is unusable ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5ac7ab5e4b8ee5ce4d8fb0988f9cb275efcc3f181b4b408179fafee121693311";

    #[test]
    fn gnu_formats() {
        let text = format!(
            "# comment\n{A}  node_exporter-1.9.1.linux-amd64.tar.gz\n{}  *loki-linux-amd64.zip\r\n\
                {} ./nginx_1.4.1_checksums.txt\nnot a line\nabcd  short.txt\n\n",
            A.to_uppercase(),
            A
        );
        let m = parse_checksums(&text);
        assert_eq!(m.len(), 3);
        assert_eq!(m["node_exporter-1.9.1.linux-amd64.tar.gz"], A);
        assert_eq!(m["loki-linux-amd64.zip"], A);
        assert_eq!(m["nginx_1.4.1_checksums.txt"], A);
    }

    #[test]
    fn api_digests() {
        assert_eq!(api_digest(&format!("sha256:{A}")).as_deref(), Some(A));
        assert_eq!(api_digest("sha512:abcd"), None);
        assert_eq!(api_digest("sha256:zz"), None);
    }
}
