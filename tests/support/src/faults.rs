//! A fault-injecting proxy in front of Azurite: forwards the storage
//! client's requests one by one and, as told, drops them unanswered (storage
//! gone, or gone right after one chosen write) or holds them a while before
//! forwarding (a write that commits long after its sender gave up).

use crate::services::{DEV_ACCOUNT, DEV_KEY};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which requests a fault applies to: given the request's text (head and
/// body, lossily decoded).
pub type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Drop every connection and request unanswered.
    Cut,
    /// Forward until a request matches; drop it and cut from then on.
    CutFrom(Matcher),
    /// Hold matching requests this long, then forward them whatever became
    /// of their sender; answer nothing back for them.
    Hold(Matcher, Duration),
}

pub struct StorageProxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    /// The request line of every request forwarded, in order.
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StorageProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (shared, log) = (fault.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(
                    client,
                    upstream,
                    shared.clone(),
                    log.clone(),
                ));
            }
        });
        Self {
            port,
            fault,
            seen,
            task,
        }
    }

    /// The request lines forwarded since the last call (`GET /…`,
    /// `MERGE /…`, `POST /…/$batch`), oldest first; the log is emptied.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// A connection string that reaches Azurite through the proxy.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};\
             TableEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
            self.port
        )
    }
}

impl Drop for StorageProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `$batch` requests: entity-group transactions, as a lead is saved.
pub fn transactions() -> Matcher {
    Arc::new(|text: &str| text.lines().next().is_some_and(|l| l.contains("$batch")))
}

fn current(fault: &Mutex<Fault>) -> Fault {
    fault.lock().unwrap().clone()
}

/// Forwards one client connection request by request (the storage client
/// sends every body with a `Content-Length`), answering straight back.
async fn proxy_connection(
    client: tokio::net::TcpStream,
    upstream: u16,
    fault: Arc<Mutex<Fault>>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    if matches!(current(&fault), Fault::Cut) {
        return;
    }
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return; // Azurite is down: the client sees its connection closed.
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'requests: loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        assert!(
            !head.contains("transfer-encoding: chunked"),
            "the proxy expects Content-Length bodies"
        );
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let request: Vec<u8> = buffer.drain(..head_end + length).collect();
        let text = String::from_utf8_lossy(&request).into_owned();
        match current(&fault) {
            Fault::Pass => {}
            Fault::Cut => break,
            Fault::CutFrom(matches) => {
                if matches(&text) {
                    *fault.lock().unwrap() = Fault::Cut;
                    break;
                }
            }
            Fault::Hold(matches, wait) if matches(&text) => {
                // The write lands late, on a connection of its own, whatever
                // became of the client; its answer goes nowhere. The client
                // hears nothing until it gives up.
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Ok(mut late) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = late.write_all(&request).await;
                        let mut sink = [0u8; 4096];
                        let _ = tokio::time::timeout(Duration::from_secs(10), late.read(&mut sink))
                            .await;
                    }
                });
                while matches!(from_client.read(&mut chunk).await, Ok(n) if n > 0) {}
                break;
            }
            Fault::Hold(..) => {}
        }
        if let Some(line) = text.lines().next() {
            seen.lock().unwrap().push(line.to_owned());
        }
        if to_server.write_all(&request).await.is_err() {
            break;
        }
    }
    answers.abort();
}

/// An SMTP proxy in front of MailDev that, once told, lets a message
/// through and then drops the connection instead of passing on the
/// server's answer to the end of `DATA`: the message is accepted, but the
/// sender cannot know it — an ambiguous send.
pub struct SmtpProxy {
    pub port: u16,
    drop_after_data: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let drop_after_data = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = drop_after_data.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(smtp_connection(client, upstream, shared.clone()));
            }
        });
        Self {
            port,
            drop_after_data,
            task,
        }
    }

    /// The next message gets through, and its sender hears nothing back.
    pub fn drop_after_next_data(&self) {
        self.drop_after_data
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SmtpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp_connection(
    client: tokio::net::TcpStream,
    upstream: u16,
    drop_after_data: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // Set once the client has sent a message's final "\r\n.\r\n".
    let message_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = message_sent.clone();
    let upload = tokio::spawn(async move {
        let mut tail = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.windows(5).any(|w| w == b"\r\n.\r\n") {
                        sent.store(true, Ordering::SeqCst);
                    }
                    let keep = tail.len().saturating_sub(4);
                    tail.drain(..keep);
                    if to_server.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut chunk = [0u8; 4096];
    loop {
        match from_server.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if message_sent.load(Ordering::SeqCst)
                    && drop_after_data.swap(false, Ordering::SeqCst)
                {
                    // The server accepted it ("250 ..."); the client never hears so.
                    break;
                }
                if to_client.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    upload.abort();
}

/// An SMTP server that accepts connections and then says nothing, ever:
/// a mail server that is stopped (SIGSTOP) or hung.
pub struct SilentSmtp {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SilentSmtp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the silent server");
        let port = listener.local_addr().expect("its address").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = listener.accept().await {
                held.push(connection);
            }
        });
        Self { port, task }
    }

    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SilentSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
