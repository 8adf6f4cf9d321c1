//! The HTTP API under abuse (audit L10): a real node's API is flooded with many concurrent
//! requests, oversized bodies and slow clients; it answers with the documented error bodies,
//! closes slow clients, and the node keeps committing blocks throughout.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{http, write_node, RunningNode};

/// Short limits so the test sees them act quickly.
const LIMITS: &str = "[api_limits]\nmax_connections = 32\nmax_concurrent_requests = 8\nread_timeout_ms = 1500\nrequest_timeout_ms = 2000\n";

#[tokio::test]
async fn flooded_api_answers_with_limits_and_the_node_keeps_committing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = RunningNode::start(&write_node(dir.path(), LIMITS));
    let before = node.wait_height(2, Duration::from_secs(30)).await;

    // Slow clients: 40 connections (more than max_connections) that send half a request head
    // and then nothing.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(node.api).await.expect("connect");
        let _ = stream
            .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: node\r\nContent-Le")
            .await;
        slow.push(stream);
    }

    // Oversized bodies: 1 MiB each, concurrently with a burst of status requests.
    let big = vec![b'x'; 1 << 20];
    let mut oversized = Vec::new();
    for _ in 0..8 {
        let big = big.clone();
        let api = node.api;
        oversized.push(tokio::spawn(async move {
            http(api, "POST", "/v1/orders", &big).await
        }));
    }
    let mut burst = Vec::new();
    for _ in 0..200 {
        let api = node.api;
        burst.push(tokio::spawn(async move {
            http(api, "GET", "/v1/status", b"").await
        }));
    }

    // The slow clients are cut off after read_timeout: each sees the connection end.
    for stream in &mut slow {
        let mut buf = [0u8; 256];
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a slow client was never disconnected");
    }

    let mut too_large = 0;
    for task in oversized {
        if let Ok(Ok((status, body))) = task.await {
            if status == 413 {
                let body: serde_json::Value =
                    serde_json::from_slice(&body).expect("413 has an ErrorBody");
                assert_eq!(body["error"], "body_too_large", "{body}");
                too_large += 1;
            } else {
                assert_eq!(status, 503, "an oversized body was not refused");
            }
        }
    }
    assert!(
        too_large > 0,
        "no oversized body was answered 413 body_too_large"
    );

    let (mut ok, mut busy) = (0, 0);
    for task in burst {
        match task.await.expect("task") {
            Ok((200, _)) => ok += 1,
            Ok((503, body)) => {
                let body: serde_json::Value =
                    serde_json::from_slice(&body).expect("503 has an ErrorBody");
                assert_eq!(body["error"], "busy", "{body}");
                busy += 1;
            }
            Ok((status, body)) => panic!("unexpected {status}: {}", String::from_utf8_lossy(&body)),
            Err(_) => {}
        }
    }
    assert!(ok > 0, "no status request was answered ({busy} busy)");

    // The node kept committing, and the API serves once the flood is over.
    node.wait_height(before + 5, Duration::from_secs(30)).await;
    node.stop().await.expect("clean stop");
}

/// The node closes a connection idle for `read_timeout_ms`; a client that pooled it must not
/// fail its next request on it. The blocking client's runtime runs only during a call, so it
/// cannot notice the close while idle and tries the dead connection first.
#[tokio::test]
async fn clients_survive_the_node_closing_their_idle_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = RunningNode::start(&write_node(
        dir.path(),
        "[api_limits]\nread_timeout_ms = 300\n",
    ));
    node.wait_height(1, Duration::from_secs(30)).await;
    let url = format!("http://{}", node.api);
    let blocking = tokio::task::spawn_blocking(move || {
        let client = voltmesh_consensus::wire::client::BlockingNodeClient::new(&url).unwrap();
        (0..3)
            .map(|_| {
                let answer = client.status().map(|s| s.height);
                std::thread::sleep(Duration::from_millis(700));
                answer
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(blocking.iter().all(Result::is_ok), "{blocking:?}");
    let client =
        voltmesh_consensus::wire::client::NodeClient::new(&format!("http://{}", node.api)).unwrap();
    for _ in 0..3 {
        client.status().await.expect("the node answers");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    node.stop().await.expect("clean stop");
}
