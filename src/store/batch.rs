//! Entity-group transactions on the wire, written as the Table service's
//! REST reference documents them ("Performing entity group
//! transactions"): one `POST {endpoint}/$batch` whose `multipart/mixed`
//! body holds one changeset, one `application/http` part per operation,
//! each asking `Prefer: return-no-content`.
//!
//! Why ours and not azure_data_tables': the SDK cannot ask for
//! `return-no-content` inside a batch, so storage echoed every inserted
//! entity back for us to receive and skip, and it built a parsed URL, a
//! request and a pass through its policy pipeline for every operation.
//! Here a transaction is one buffer, one signature and one request, and
//! its answer is read for the two things that matter: each operation's
//! status and new ETag (and the error code of a refusal).

use super::access::Access;
use crate::configuration::StorageAccount;
use crate::domain::Secret;
use azure_core::auth::TokenCredential;
use azure_core::error::{Error, ErrorKind};
use azure_core::StatusCode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::sync::Arc;

type Entity = Map<String, Value>;

/// The service version we speak (the one azure_data_tables sends).
const VERSION: &str = "2022-11-02";
/// The scope of a token for the Storage data plane.
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// What a row or partition key may not carry raw in an entity's address:
/// what a URL path segment may not, plus `%` (so nothing decodes twice).
const KEY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The writer of one storage account's transactions; cheap to clone.
#[derive(Clone)]
pub(super) struct Batches {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The Table service's base URL without a trailing slash, e.g.
    /// `https://acct.table.core.windows.net` or Azurite's
    /// `http://127.0.0.1:10002/devstoreaccount1`.
    endpoint: String,
    /// Where a batch is posted: `{endpoint}/$batch`, with a SAS's query.
    batch_url: String,
    auth: Auth,
}

enum Auth {
    /// SharedKey: the account key (keyed once), the account's name, and
    /// the batch URL's canonicalized resource, `/{account}{path}`.
    Key {
        key: Hmac<Sha256>,
        account: String,
        resource: String,
    },
    /// The SAS is in `batch_url` already.
    Sas,
    /// A bearer token from the app's identity (cached by the credential).
    Token(Arc<dyn TokenCredential>),
}

/// One operation's request inside the changeset.
pub(super) enum Request<'a> {
    /// `POST {table}` with the entity.
    Insert(&'a Entity),
    /// `PUT {table}(keys)` without `If-Match`: insert or replace.
    Upsert {
        row_key: &'a str,
        entity: &'a Entity,
    },
    /// `MERGE {table}(keys)`: on `if_match` (an ETag) when given, else
    /// insert or merge.
    Merge {
        row_key: &'a str,
        columns: &'a Entity,
        if_match: Option<&'a str>,
    },
    /// `DELETE {table}(keys)` at `if_match`, or at any version.
    Delete {
        row_key: &'a str,
        if_match: Option<&'a str>,
    },
}

/// One operation's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    pub status: StatusCode,
    /// The row's new ETag (none for a delete, or a refusal).
    pub etag: Option<String>,
    /// Table storage's error code of a refusal, e.g. `EntityAlreadyExists`.
    pub code: Option<String>,
}

impl Batches {
    /// The writer for `account`, authorized by `access`.
    pub(super) fn new(
        account: &StorageAccount,
        http: reqwest::Client,
        access: &Access<'_>,
    ) -> anyhow::Result<Self> {
        let endpoint = account.table_endpoint.as_str().trim_end_matches('/');
        let mut batch_url = format!("{endpoint}/$batch");
        let auth = match access {
            Access::AccountKey(key) => Auth::Key {
                key: keyed(key)?,
                account: account.name.clone(),
                resource: format!(
                    "/{}{}/$batch",
                    account.name,
                    account.table_endpoint.path().trim_end_matches('/')
                ),
            },
            Access::Sas(sas) => {
                batch_url.push('?');
                batch_url.push_str(sas.expose().trim_start_matches('?'));
                Auth::Sas
            }
            Access::Identity(identity) => Auth::Token(identity.clone()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: endpoint.to_owned(),
                batch_url,
                auth,
            }),
        })
    }

    /// Sends `requests` as one transaction on `partition` of `table`:
    /// each operation's answer in order when storage took the batch (all
    /// succeeded, or the one that was refused), or the error of a batch
    /// refused whole (with its status and code) or unanswered.
    pub(super) async fn send(
        &self,
        table: &str,
        partition: &str,
        requests: impl IntoIterator<Item = Request<'_>>,
    ) -> azure_core::Result<Vec<Answer>> {
        let inner = &*self.inner;
        let boundary = uuid::Uuid::new_v4().simple();
        let body = inner.body(table, partition, boundary, requests)?;
        let content_type = format!("multipart/mixed; boundary=batch_{boundary}");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut request = inner
            .http
            .post(&inner.batch_url)
            .header("x-ms-version", VERSION)
            .header("x-ms-date", &date)
            .header("Content-Type", &content_type)
            .header("Accept", "application/json;odata=minimalmetadata")
            .header("DataServiceVersion", "3.0")
            .header("MaxDataServiceVersion", "3.0;NetFx");
        match &inner.auth {
            Auth::Key {
                key,
                account,
                resource,
            } => {
                let signed = format!("POST\n\n{content_type}\n{date}\n{resource}");
                let mut mac = key.clone();
                mac.update(signed.as_bytes());
                let signature =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                request =
                    request.header("Authorization", format!("SharedKey {account}:{signature}"));
            }
            Auth::Sas => {}
            Auth::Token(credential) => {
                let token = credential.get_token(&[STORAGE_SCOPE]).await.map_err(|_| {
                    Error::message(ErrorKind::Credential, "no token for the app's identity")
                })?;
                request = request.bearer_auth(token.token.secret());
            }
        }
        // A transport error quotes the URL, and with it a SAS: drop it.
        let unreachable = |e: reqwest::Error| Error::new(ErrorKind::Io, e.without_url());
        let response = request.body(body).send().await.map_err(unreachable)?;
        let status = StatusCode::try_from(response.status().as_u16())
            .map_err(|_| Error::message(ErrorKind::DataConversion, "an unknown HTTP status"))?;
        let header_code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(unreachable)?;
        if status != StatusCode::Accepted {
            return Err(Error::message(
                ErrorKind::HttpResponse {
                    status,
                    error_code: header_code.or_else(|| error_code(&text)),
                },
                "storage refused the batch",
            ));
        }
        Ok(answers(&text))
    }
}

impl Inner {
    /// The batch's body, per the REST reference (CRLF line ends).
    fn body<'a>(
        &self,
        table: &str,
        partition: &str,
        boundary: uuid::fmt::Simple,
        requests: impl IntoIterator<Item = Request<'a>>,
    ) -> azure_core::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(4096);
        put(
            &mut body,
            format_args!(
                "--batch_{boundary}\r\n\
                 Content-Type: multipart/mixed; boundary=changeset_{boundary}\r\n\r\n"
            ),
        );
        for request in requests {
            let (method, row_key, entity, if_match) = match request {
                Request::Insert(entity) => ("POST", None, Some(entity), None),
                Request::Upsert { row_key, entity } => ("PUT", Some(row_key), Some(entity), None),
                Request::Merge {
                    row_key,
                    columns,
                    if_match,
                } => ("MERGE", Some(row_key), Some(columns), if_match),
                Request::Delete { row_key, if_match } => {
                    ("DELETE", Some(row_key), None, Some(if_match.unwrap_or("*")))
                }
            };
            put(
                &mut body,
                format_args!(
                    "--changeset_{boundary}\r\nContent-Type: application/http\r\n\
                     Content-Transfer-Encoding: binary\r\n\r\n{method} {}/{table}",
                    self.endpoint
                ),
            );
            if let Some(row_key) = row_key {
                put(
                    &mut body,
                    format_args!(
                        "(PartitionKey='{}',RowKey='{}')",
                        quoted(partition),
                        quoted(row_key)
                    ),
                );
            }
            body.extend_from_slice(
                b" HTTP/1.1\r\nAccept: application/json;odata=minimalmetadata\r\n\
                  DataServiceVersion: 3.0\r\n",
            );
            if let Some(etag) = if_match {
                put(&mut body, format_args!("If-Match: {etag}\r\n"));
            }
            if let Some(entity) = entity {
                body.extend_from_slice(
                    b"Content-Type: application/json\r\nPrefer: return-no-content\r\n\r\n",
                );
                serde_json::to_writer(&mut body, entity)
                    .map_err(|e| Error::new(ErrorKind::DataConversion, e))?;
            }
            body.extend_from_slice(b"\r\n");
        }
        put(
            &mut body,
            format_args!("--changeset_{boundary}--\r\n--batch_{boundary}--\r\n"),
        );
        Ok(body)
    }
}

/// Appends formatted text to a body (writing to a `Vec` cannot fail).
fn put(body: &mut Vec<u8>, text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = body.write_fmt(text);
}

/// The account key, decoded and keyed once (it was checked to be base64
/// when the settings were read).
fn keyed(key: &Secret) -> anyhow::Result<Hmac<Sha256>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.expose())
        .map_err(|_| anyhow::anyhow!("the AccountKey is not base64"))?;
    Hmac::new_from_slice(&bytes).map_err(|_| anyhow::anyhow!("the AccountKey is not usable"))
}

/// A key as the quoted literal of an entity's address: quotes doubled
/// (OData), then percent-encoded where a path segment needs it.
fn quoted(key: &str) -> String {
    let doubled = if key.contains('\'') {
        std::borrow::Cow::Owned(key.replace('\'', "''"))
    } else {
        std::borrow::Cow::Borrowed(key)
    };
    utf8_percent_encode(&doubled, KEY).to_string()
}

/// Each operation's answer in a `202 Accepted` batch response: one per
/// multipart part holding a status line. Line ends may be CRLF or LF.
fn answers(text: &str) -> Vec<Answer> {
    let mut parts: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        // A boundary (`--…`) starts the next part.
        if line.starts_with("--") {
            parts.push(Vec::new());
        } else if let Some(part) = parts.last_mut() {
            part.push(line);
        }
    }
    parts.iter().filter_map(|part| answer(part)).collect()
}

/// One part's answer: its status line, `ETag`, and a refusal's error code
/// (its `x-ms-error-code` header or the OData error body).
fn answer(part: &[&str]) -> Option<Answer> {
    let start = part.iter().position(|line| line.starts_with("HTTP/1.1 "))?;
    let status = part[start]["HTTP/1.1 ".len()..]
        .split(' ')
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::try_from(code).ok())
        // An unreadable status is no success.
        .unwrap_or(StatusCode::BadGateway);
    let rest = &part[start + 1..];
    let blank = rest
        .iter()
        .position(|line| line.is_empty())
        .unwrap_or(rest.len());
    let (headers, body) = rest.split_at(blank);
    let header = |name: &str| {
        headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let code = if status.is_success() {
        None
    } else {
        header("x-ms-error-code").or_else(|| error_code(&body.join("\n")))
    };
    Some(Answer {
        status,
        etag: header("etag"),
        code,
    })
}

/// The `code` of an OData error body (`{"odata.error":{"code":…}}`).
fn error_code(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body.trim()).ok()?;
    value
        .pointer("/odata.error/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    //! The writer against a stand-in that reads the request as the REST
    //! reference ("Performing entity group transactions", "Authorize with
    //! Shared Key") specifies it, and answers as the reference's examples
    //! do. Azurite checks the account-key path end to end in every
    //! integration test; this is where SAS and a bearer token are checked.
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// One request as the stand-in received it.
    struct Received {
        request_line: String,
        headers: HashMap<String, String>,
        body: String,
    }

    /// Serves one connection: reads one request, answers `answer` (status
    /// line, headers and body, as written on the wire).
    async fn stand_in(answer: String) -> (String, tokio::task::JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut raw = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head_end, length) = loop {
                let n = socket.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the request ended early");
                raw.extend_from_slice(&chunk[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse::<usize>().expect("a length"))
                        .expect("a Content-Length");
                    break (end + 4, length);
                }
            };
            while raw.len() < head_end + length {
                let n = socket.read(&mut chunk).await.expect("read");
                raw.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8(raw[..head_end - 4].to_vec()).expect("UTF-8 head");
            let mut lines = head.split("\r\n");
            let request_line = lines.next().expect("a request line").to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                .collect();
            let body = String::from_utf8(raw[head_end..].to_vec()).expect("UTF-8 body");
            socket.write_all(answer.as_bytes()).await.expect("answer");
            socket.shutdown().await.ok();
            Received {
                request_line,
                headers,
                body,
            }
        });
        (url, served)
    }

    fn http_answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("Connection: close\r\n\r\n");
        text.push_str(body);
        text
    }

    /// The reference's example answer: every operation `204 No Content`
    /// with its ETag.
    fn accepted(etags: &[&str]) -> String {
        let mut body = String::from(
            "--batchresponse_e69b1c6c\r\nContent-Type: multipart/mixed; \
             boundary=changesetresponse_f2ce4a4b\r\n\r\n",
        );
        for etag in etags {
            body.push_str(&format!(
                "--changesetresponse_f2ce4a4b\r\nContent-Type: application/http\r\n\
                 Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n\
                 X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n\
                 Preference-Applied: return-no-content\r\nDataServiceVersion: 3.0;\r\n\
                 ETag: {etag}\r\n\r\n\r\n"
            ));
        }
        body.push_str("--changesetresponse_f2ce4a4b--\r\n--batchresponse_e69b1c6c--\r\n");
        http_answer(
            "202 Accepted",
            &[(
                "Content-Type",
                "multipart/mixed; boundary=batchresponse_e69b1c6c",
            )],
            &body,
        )
    }

    /// A writer for account `acct` at `endpoint`, authorized by `access`.
    fn writer(endpoint: &str, access: &Access<'_>) -> Batches {
        let account = StorageAccount {
            name: "acct".into(),
            table_endpoint: endpoint.parse().expect("a URL"),
            // The writer reads how it is authorized from `access` only.
            credentials: crate::configuration::StorageCredentials::Identity,
        };
        Batches::new(&account, reqwest::Client::new(), access).expect("a writer")
    }

    /// A 64-byte key, base64, as an account key is.
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn entity(row_key: &str, name: &str) -> Entity {
        let value = json!({"PartitionKey": "2026-12", "RowKey": row_key, "Name": name});
        value.as_object().cloned().expect("an object")
    }

    /// The `Authorization` the reference's SharedKey scheme gives the
    /// received request for `resource` (its canonicalized resource).
    fn shared_key(received: &Received, resource: &str) -> String {
        let h = &received.headers;
        let to_sign = format!(
            "POST\n\n{}\n{}\n{resource}",
            h["content-type"], h["x-ms-date"]
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        format!("SharedKey acct:{signature}")
    }

    /// One insert sent by a writer for `endpoint` authorized by `access`.
    async fn send_one(endpoint: &str, access: Access<'_>) -> azure_core::Result<Vec<Answer>> {
        let row = entity("L.1", "Ada");
        writer(endpoint, &access)
            .send("Leads", "2026-12", [Request::Insert(&row)])
            .await
    }

    /// The parts of a multipart body under `boundary`.
    fn parts<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
        let delimiter = format!("--{boundary}");
        let closing = format!("--{boundary}--\r\n");
        assert!(
            body.contains(&closing),
            "no closing delimiter for {boundary}"
        );
        body.split(delimiter.as_str())
            .skip(1)
            .filter(|part| !part.starts_with("--"))
            .map(|part| {
                part.strip_prefix("\r\n")
                    .expect("a CRLF after the delimiter")
            })
            .collect()
    }

    /// The changeset's operations as the service would read them:
    /// (request line, headers, body).
    fn operations(received: &Received) -> Vec<(String, HashMap<String, String>, String)> {
        let content_type = &received.headers["content-type"];
        let batch = content_type
            .strip_prefix("multipart/mixed; boundary=")
            .expect("a multipart batch");
        assert!(batch.starts_with("batch_"), "{batch}");
        let batch_parts = parts(&received.body, batch);
        assert_eq!(batch_parts.len(), 1, "one changeset");
        let (head, changeset_body) = batch_parts[0].split_once("\r\n\r\n").expect("a head");
        let changeset = head
            .strip_prefix("Content-Type: multipart/mixed; boundary=")
            .expect("a changeset");
        assert!(changeset.starts_with("changeset_"), "{changeset}");
        parts(changeset_body, changeset)
            .into_iter()
            .map(|part| {
                let (mime, http) = part.split_once("\r\n\r\n").expect("MIME headers");
                assert_eq!(
                    mime,
                    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary"
                );
                let (head, body) = http.split_once("\r\n\r\n").expect("a request head");
                let mut lines = head.split("\r\n");
                let line = lines.next().expect("a request line").to_owned();
                let headers = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (line, headers, body.trim_end_matches("\r\n").to_owned())
            })
            .collect()
    }

    #[tokio::test]
    async fn a_transaction_is_one_signed_batch_as_the_reference_writes_it() {
        let (url, served) = stand_in(accepted(&["W/\"1\"", "W/\"2\"", "W/\"3\""])).await;
        let key = Secret::new(KEY);
        let batches = writer(&url, &Access::AccountKey(&key));
        let (inserted, replaced, columns) = (
            entity("L.1", "Ada"),
            entity("P.o'brien", "Bo"),
            entity("D.x", "Cy"),
        );
        let answers = batches
            .send(
                "Leads",
                "2026-12",
                [
                    Request::Insert(&inserted),
                    Request::Upsert {
                        row_key: "P.o'brien",
                        entity: &replaced,
                    },
                    Request::Merge {
                        row_key: "D x",
                        columns: &columns,
                        if_match: Some("W/\"datetime'2026-12-06T09%3A00Z'\""),
                    },
                    Request::Delete {
                        row_key: "D.y",
                        if_match: None,
                    },
                ],
            )
            .await
            .expect("accepted");
        let received = served.await.expect("served");

        // The request, and its SharedKey signature computed as the
        // reference defines it for the Table service.
        assert_eq!(received.request_line, "POST /$batch HTTP/1.1");
        let h = &received.headers;
        assert_eq!(h["x-ms-version"], "2022-11-02");
        assert_eq!(h["dataserviceversion"], "3.0");
        assert!(
            h["accept"].starts_with("application/json"),
            "{}",
            h["accept"]
        );
        let date = &h["x-ms-date"];
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert_eq!(h["authorization"], shared_key(&received, "/acct/$batch"));

        // The operations, in order, each as the reference writes it.
        let ops = operations(&received);
        assert_eq!(ops.len(), 4);
        let address = |row: &str| format!("{url}/Leads(PartitionKey='2026-12',RowKey='{row}')");
        assert_eq!(ops[0].0, format!("POST {url}/Leads HTTP/1.1"));
        assert_eq!(ops[1].0, format!("PUT {} HTTP/1.1", address("P.o''brien")));
        assert_eq!(ops[2].0, format!("MERGE {} HTTP/1.1", address("D%20x")));
        assert_eq!(ops[3].0, format!("DELETE {} HTTP/1.1", address("D.y")));
        for (line, headers, body) in &ops[..3] {
            assert_eq!(headers["Content-Type"], "application/json", "{line}");
            assert_eq!(headers["Prefer"], "return-no-content", "{line}");
            assert_eq!(headers["DataServiceVersion"], "3.0", "{line}");
            let _: Entity = serde_json::from_str(body).expect("the entity as JSON");
        }
        assert_eq!(ops[0].2, serde_json::to_string(&inserted).expect("JSON"));
        assert!(
            !ops[1].1.contains_key("If-Match"),
            "an upsert is unconditional"
        );
        assert_eq!(ops[2].1["If-Match"], "W/\"datetime'2026-12-06T09%3A00Z'\"");
        assert_eq!(ops[3].1["If-Match"], "*");
        assert_eq!(ops[3].2, "", "a delete has no body");

        let etags: Vec<_> = answers.iter().map(|a| a.etag.as_deref()).collect();
        assert_eq!(etags, [Some("W/\"1\""), Some("W/\"2\""), Some("W/\"3\"")]);
        assert!(answers.iter().all(|a| a.status == StatusCode::NoContent));
    }

    #[tokio::test]
    async fn azurites_address_signs_the_account_twice() {
        let (url, served) = stand_in(accepted(&["W/\"1\""])).await;
        let path_style = format!("{url}/acct");
        let key = Secret::new(KEY);
        send_one(&path_style, Access::AccountKey(&key))
            .await
            .expect("accepted");
        let received = served.await.expect("served");
        assert_eq!(received.request_line, "POST /acct/$batch HTTP/1.1");
        assert_eq!(
            received.headers["authorization"],
            shared_key(&received, "/acct/acct/$batch")
        );
        assert_eq!(
            operations(&received)[0].0,
            format!("POST {path_style}/Leads HTTP/1.1")
        );
    }

    #[tokio::test]
    async fn a_sas_rides_on_the_batch_url_and_nothing_is_signed() {
        let (url, served) = stand_in(accepted(&["W/\"1\""])).await;
        let sas = Secret::new("?sv=2022-11-02&ss=t&sig=abc%3D");
        send_one(&url, Access::Sas(&sas)).await.expect("accepted");
        let received = served.await.expect("served");
        assert_eq!(
            received.request_line,
            "POST /$batch?sv=2022-11-02&ss=t&sig=abc%3D HTTP/1.1"
        );
        assert!(!received.headers.contains_key("authorization"));
        // The operations' own addresses carry no signature.
        assert!(!received.body.contains("sig="), "{}", received.body);
    }

    #[derive(Debug)]
    struct FixedToken;

    #[async_trait::async_trait]
    impl TokenCredential for FixedToken {
        async fn get_token(
            &self,
            scopes: &[&str],
        ) -> azure_core::Result<azure_core::auth::AccessToken> {
            assert_eq!(scopes, [STORAGE_SCOPE]);
            Ok(azure_core::auth::AccessToken::new(
                "eyJ0eXAi.token",
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        }

        async fn clear_cache(&self) -> azure_core::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_apps_identity_is_a_bearer_token_for_storage() {
        let (url, served) = stand_in(accepted(&["W/\"1\""])).await;
        let identity: Arc<dyn TokenCredential> = Arc::new(FixedToken);
        send_one(&url, Access::Identity(identity))
            .await
            .expect("accepted");
        let received = served.await.expect("served");
        assert_eq!(received.headers["authorization"], "Bearer eyJ0eXAi.token");
        assert_eq!(received.request_line, "POST /$batch HTTP/1.1");
    }

    #[tokio::test]
    async fn a_refused_operation_is_the_one_answer_with_its_code() {
        // The reference's example of a failed changeset: one answer, the
        // failing operation's, its index in the message.
        let body = "--batchresponse_7f1b\r\nContent-Type: multipart/mixed; \
             boundary=changesetresponse_0b7a\r\n\r\n--changesetresponse_0b7a\r\n\
             Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
             HTTP/1.1 409 Conflict\r\nX-Content-Type-Options: nosniff\r\n\
             DataServiceVersion: 3.0;\r\nContent-Type: application/json;odata=minimalmetadata;\
             streaming=true;charset=utf-8\r\n\r\n{\"odata.error\":{\"code\":\
             \"EntityAlreadyExists\",\"message\":{\"lang\":\"en-US\",\"value\":\
             \"1:The specified entity already exists.\\nRequestId:a\"}}}\r\n\
             --changesetresponse_0b7a--\r\n--batchresponse_7f1b--\r\n";
        let (url, served) = stand_in(http_answer(
            "202 Accepted",
            &[(
                "Content-Type",
                "multipart/mixed; boundary=batchresponse_7f1b",
            )],
            body,
        ))
        .await;
        let key = Secret::new(KEY);
        let batches = writer(&url, &Access::AccountKey(&key));
        let (a, b) = (entity("M.1", "Ada"), entity("L.1", "Ada"));
        let answers = batches
            .send(
                "Leads",
                "2026-12",
                [Request::Insert(&a), Request::Insert(&b)],
            )
            .await
            .expect("answered");
        served.await.expect("served");
        assert_eq!(
            answers,
            [Answer {
                status: StatusCode::Conflict,
                etag: None,
                code: Some("EntityAlreadyExists".into()),
            }]
        );
    }

    #[tokio::test]
    async fn a_batch_refused_whole_says_its_status_and_code_only() {
        let (url, served) = stand_in(http_answer(
            "403 Server failed to authenticate the request",
            &[
                ("x-ms-error-code", "AuthenticationFailed"),
                ("Content-Type", "application/json"),
            ],
            "{\"odata.error\":{\"code\":\"AuthenticationFailed\",\"message\":{\"value\":\"sig=SECRET\"}}}",
        ))
        .await;
        let sas = Secret::new("sv=1&sig=SECRET");
        let error = send_one(&url, Access::Sas(&sas))
            .await
            .expect_err("refused");
        served.await.expect("served");
        let failure = super::super::Failure::of(&error);
        assert_eq!(failure.to_string(), "HTTP 403 AuthenticationFailed");
        assert!(!format!("{error:?}").contains("SECRET"), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreachable_service_is_an_io_error_without_the_sas() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        drop(listener);
        let sas = Secret::new("sv=1&sig=SECRET");
        let error = send_one(&url, Access::Sas(&sas))
            .await
            .expect_err("nobody listens");
        assert!(matches!(error.kind(), ErrorKind::Io), "{error:?}");
        assert!(
            !format!("{error:?} {error}").contains("SECRET"),
            "{error:?}"
        );
    }

    #[test]
    fn answers_are_read_with_lf_line_ends_too() {
        let text =
            "--batchresponse_1\nContent-Type: multipart/mixed; boundary=changesetresponse_2\n\n\
                    --changesetresponse_2\nContent-Type: application/http\n\n\
                    HTTP/1.1 201 Created\netag: W/\"a\"\n\n{\"RowKey\":\"HTTP/1.1 500 x\"}\n\
                    --changesetresponse_2\nContent-Type: application/http\n\n\
                    HTTP/1.1 204 No Content\nETag: W/\"b\"\n\n\
                    --changesetresponse_2--\n--batchresponse_1--\n";
        let got: Vec<_> = answers(text)
            .into_iter()
            .map(|a| (a.status, a.etag))
            .collect();
        assert_eq!(
            got,
            [
                (StatusCode::Created, Some("W/\"a\"".to_owned())),
                (StatusCode::NoContent, Some("W/\"b\"".to_owned())),
            ]
        );
    }

    #[test]
    fn keys_are_quoted_as_odata_literals() {
        assert_eq!(quoted("L.abc-1"), "L.abc-1");
        assert_eq!(quoted("o'brien"), "o''brien");
        assert_eq!(quoted("a b%c#d?e"), "a%20b%25c%23d%3Fe");
        assert_eq!(quoted("é"), "%C3%A9");
    }
}
