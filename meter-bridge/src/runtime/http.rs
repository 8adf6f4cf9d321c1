//! The bridge's read-only HTTP server (`[http] listen`): the market topics' latest payloads for
//! home energy managers that poll a URL instead of subscribing to MQTT (evcc's `custom` tariff
//! with `forecast: {source: http, uri: ...}`, EMHASS's runtime parameters).
//!
//! `GET /v1/<key>` answers the latest payload of the MQTT topic `<results_prefix>/<key>`, byte
//! for byte, as `application/json`, for the market topics ([`super::market_board`]):
//!
//! | path | payload |
//! |---|---|
//! | `/v1/market/price_signal` | the indicative prices in full |
//! | `/v1/market/price_signal/evcc/grid`, `/v1/market/price_signal/evcc/feedin` | evcc's `[{"start", "end", "value"}]` (import, export) |
//! | `/v1/market/price_signal/emhass` | `{"load_cost_forecast": [..], "prod_price_forecast": [..]}` |
//! | `/v1/market/clearing` | the last clearing summary (the firm price) |
//!
//! Before its first publication a path answers 404 with `{"error": "not_published_yet"}`; any
//! other path 404 with `{"error": "not_found"}`. Nothing here writes: households act over MQTT.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::market_board::MarketBoard;

/// The paths served, after `/v1/`.
const KEYS: [&str; 5] = [
    "market/price_signal",
    "market/price_signal/evcc/grid",
    "market/price_signal/evcc/feedin",
    "market/price_signal/emhass",
    "market/clearing",
];

/// The router over `board`.
pub fn router(board: MarketBoard) -> Router {
    Router::new()
        .route("/v1/{*key}", get(latest))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such path") })
        .with_state(board)
}

/// Serves [`router`] on `listener` until `shutdown` completes.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    board: MarketBoard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(board))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn latest(State(board): State<MarketBoard>, Path(key): Path<String>) -> Response {
    if !KEYS.contains(&key.as_str()) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such path");
    }
    match board.get(&key) {
        Some(payload) => (
            [(header::CONTENT_TYPE, "application/json")],
            payload.to_vec(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_published_yet",
            "the bridge has not published this yet (the price signal follows the first planned interval, the clearing the first cleared one)",
        ),
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error": kind, "message": message}).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `GET path` over a fresh connection: status line and body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn serves_the_latest_market_payloads_and_says_what_is_missing() {
        let board = MarketBoard::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, board.clone(), async {
            let _ = stopped.await;
        }));
        let (status, body) = get(addr, "/v1/market/price_signal/evcc/grid").await;
        assert!(status.contains("404"), "{status}");
        assert!(body.contains("not_published_yet"), "{body}");
        let evcc =
            br#"[{"start":"2026-12-05T10:00:00Z","end":"2026-12-05T10:15:00Z","value":0.21}]"#;
        board.post("vm", "vm/market/price_signal/evcc/grid", evcc);
        let (status, body) = get(addr, "/v1/market/price_signal/evcc/grid").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body.as_bytes(), evcc);
        let (status, body) = get(addr, "/v1/households/h1/fills").await;
        assert!(
            status.contains("404") && body.contains("not_found"),
            "{status} {body}"
        );
        let (status, _) = get(addr, "/elsewhere").await;
        assert!(status.contains("404"), "{status}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
