//! A server under test as a child process: the release handler or the
//! Node.js peer. Both answer `GET /` with 200 once ready; both are killed
//! when dropped.

use std::io::{Read as _, Write as _};
use std::process::Child;
use std::time::{Duration, Instant};

pub struct ChildServer {
    child: Child,
    pub port: u16,
}

impl ChildServer {
    pub fn new(child: Child, port: u16) -> Self {
        Self { child, port }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Blocks until `GET /` answers 200; when it did, `None` if it never
    /// does within `within` (or the process exited).
    pub fn wait_ready(&mut self, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ready(self.port) {
                return Some(Instant::now());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        None
    }

    /// As [`ChildServer::wait_ready`], panicking with `what` if it never is.
    pub fn ready_or_panic(&mut self, what: &str) {
        if self.wait_ready(Duration::from_secs(15)).is_none() {
            panic!("{what} never answered GET / on port {}", self.port);
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 `GET /`: true on a 200.
pub fn ready(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
