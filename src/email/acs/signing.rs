//! Signing a request with an ACS access key, as ACS documents it:
//! HMAC-SHA256 over `METHOD\npath?query\nx-ms-date;host;content-hash`,
//! sent as `x-ms-date`, `x-ms-content-sha256` and `Authorization`.

use super::super::SendError;
use crate::domain::Secret;
use anyhow::anyhow;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

/// Signed headers, in the order of the string to sign.
const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// The signing headers for one access-key request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Signature {
    pub(super) content_hash: String,
    pub(super) host: String,
    pub(super) authorization: String,
}

/// The signing headers for one request.
pub(super) fn sign(
    key: &Secret,
    method: &Method,
    url: &Url,
    body: &[u8],
    date: &str,
) -> Result<Signature, SendError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let content_hash = engine.encode(Sha256::digest(body));
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(SendError::Rejected("the ACS endpoint has no host".into())),
    };
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let string_to_sign = format!("{method}\n{path_and_query}\n{date};{host};{content_hash}");
    let key = engine
        .decode(key.expose().trim())
        .map_err(|_| SendError::Rejected("the ACS access key is not valid base64".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| SendError::Rejected("the ACS access key cannot be used for HMAC".into()))?;
    mac.update(string_to_sign.as_bytes());
    let signature = engine.encode(mac.finalize().into_bytes());
    Ok(Signature {
        authorization: format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"),
        content_hash,
        host,
    })
}

/// RFC 1123 date, always GMT: `Sun, 22 Nov 2026 10:00:00 GMT`.
pub(super) fn rfc1123(at: OffsetDateTime) -> Result<String, SendError> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .map_err(|e| SendError::Unavailable(anyhow!("formatting x-ms-date: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    // An arbitrary key; the expected signatures were computed independently
    // (Python's hmac/hashlib) from the documented string to sign.
    const KEY: &str = "bm90LWEtcmVhbC1hY3MtYWNjZXNzLWtleS0wMTIzNDU2Nzg5";
    const DATE: &str = "Sun, 22 Nov 2026 10:00:00 GMT";

    #[test]
    fn signs_a_post_as_documented() {
        let url = Url::parse(
            "https://contoso.communication.azure.com/emails:send?api-version=2023-03-31",
        )
        .unwrap();
        let signed = sign(
            &Secret::new(KEY),
            &Method::POST,
            &url,
            br#"{"senderAddress":"a@b.co"}"#,
            DATE,
        )
        .unwrap();
        assert_eq!(
            signed,
            Signature {
                content_hash: "3Ptg25RM7Nk/K90Py86cVHymvjfLaA/EpF41XYxrpoc=".into(),
                host: "contoso.communication.azure.com".into(),
                authorization: "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256\
                                &Signature=LgYGaSgsAjFLEyIl6zyf5uz9+j1Jef7kJf6NexnQyM8="
                    .into(),
            }
        );
    }

    #[test]
    fn signs_a_get_with_the_port_and_the_empty_body_hash() {
        let url = Url::parse("https://127.0.0.1:8443/emails/operations/abc?api-version=2023-03-31")
            .unwrap();
        let signed = sign(&Secret::new(KEY), &Method::GET, &url, b"", DATE).unwrap();
        assert_eq!(
            signed.content_hash,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(signed.host, "127.0.0.1:8443");
        assert!(signed
            .authorization
            .ends_with("&Signature=nRmn0JIuPT6Urnp+PkskPHFqFKdS3dEgzNa5GaVbDxU="));
    }

    #[test]
    fn a_key_that_is_not_base64_is_rejected_without_quoting_it() {
        let url = Url::parse("https://x.communication.azure.com/").unwrap();
        let err = sign(&Secret::new("not*base64"), &Method::GET, &url, b"", DATE).unwrap_err();
        assert!(matches!(err, SendError::Rejected(_)));
        assert!(!err.to_string().contains("not*base64"), "{err}");
    }

    #[test]
    fn dates_are_rfc1123_gmt() {
        let at = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        assert_eq!(rfc1123(at).unwrap(), DATE);
        let at = time::macros::datetime!(2027-01-05 23:04:09 +02:00);
        assert_eq!(rfc1123(at).unwrap(), "Tue, 05 Jan 2027 21:04:09 GMT");
    }
}
