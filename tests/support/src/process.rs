//! The real `handler` binary as a child process, standalone: for what only
//! a process can show — a SIGKILL in mid-delivery, two instances on one
//! table, identity settings read from the environment.

use crate::services::free_port;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct HandlerProcess {
    pub port: u16,
    child: Child,
}

impl HandlerProcess {
    /// Starts `binary serve` with exactly `env` (plus `PATH` and a free
    /// `HANDLER_PORT`) and waits until it answers `GET /`.
    pub fn start(binary: &Path, env: &[(String, String)]) -> Self {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HANDLER_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the handler");
        let process = Self { port, child };
        process.wait_until_ready();
        process
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the handler did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no cleanup — a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HandlerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `body` to the LeadIngest of the handler at `address`: its status.
pub async fn post_lead(client: &reqwest::Client, address: &str, body: String) -> u16 {
    client
        .post(format!("{address}/api/LeadIngest"))
        .body(body)
        .send()
        .await
        .expect("the handler answers")
        .status()
        .as_u16()
}
