//! The standalone server faces the network alone: idle, half-sent and
//! trickled connections are closed, connections are bounded, and a real
//! lead still gets in.

use super::*;
use std::time::{Duration, Instant};
use testkit::spawn_app;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the server lets a connection idle or dawdle over its headers.
const HEADER_READ: Duration = marketplace_leads::http::server::HEADER_READ_TIMEOUT;

/// Waits until the server closes `stream` (or answers and closes), for at
/// most `bound`; returns how long that took, or `None`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            bound.saturating_sub(started.elapsed()),
            stream.read(&mut buffer),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_half_sent_and_trickled_connections_are_closed() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let bound = HEADER_READ + Duration::from_secs(5);

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /api/LeadIngest HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    let trickler = tokio::spawn(async move {
        for byte in b"POST /api/LeadIngest HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if trickle.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        closed_within(&mut trickle, Duration::from_secs(30)).await
    });
    let idle_closed = closed_within(&mut idle, bound).await;
    let half_closed = closed_within(&mut half, bound).await;
    let trickle_closed = trickler.await.unwrap();
    report!(
        "connections closed: idle after {idle_closed:?}, half-sent headers after {half_closed:?}, \
         trickled headers after {trickle_closed:?} (bound {HEADER_READ:?})"
    );
    assert!(idle_closed.is_some() && half_closed.is_some() && trickle_closed.is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/LeadIngest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Offer",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(40), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    report!(
        "a body that stops: answered after {:.1?}: {}",
        started.elapsed(),
        answer.lines().next().unwrap_or("")
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"error":"#), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_cannot_keep_a_real_lead_out() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    // More idle connections than the server holds at once.
    let over = marketplace_leads::http::server::MAX_CONNECTIONS + 50;
    let mut idle = Vec::new();
    for _ in 0..over {
        if let Ok(stream) = TcpStream::connect(&addr).await {
            idle.push(stream);
        }
    }
    let started = Instant::now();
    let status = app.post_lead(lead("Patient")).await.status();
    let took = started.elapsed();
    report!(
        "{} idle connections open: a real lead answered {status} after {took:.1?}",
        idle.len()
    );
    assert_eq!(status, 201);
    assert!(took < HEADER_READ + Duration::from_secs(5), "{took:?}");
    drop(idle);
    app.stop().await;
}
