//! The HTTP endpoint: `GET /metrics` answers with the OpenMetrics text of a
//! [`Metrics`] set, after asking the daemon to refresh what is read only on a
//! scrape (the kernel's drop counters). axum serves it; everything else is 404.
//!
//! The listener is bound at start, before the sandbox is entered, so a port in
//! use stops start-up with the address named rather than leaving the agent
//! running without its endpoint.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Metrics;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Longest a scrape waits for the drop counters; past it the last ones are served.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the daemon to bring the scrape-time metrics up to date; resolves when done.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("metrics.listen {addr}: cannot listen: {source}")]
pub struct BindError {
    /// The configured address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` (start-up; errors name it).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    refresh: Refresh,
}

/// Serves `metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    refresh: Refresh,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(AppState { metrics, refresh });
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    if tokio::time::timeout(REFRESH_TIMEOUT, (state.refresh)())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = REFRESH_TIMEOUT.as_secs(),
            "metrics: the drop counters were not read in time; serving the last ones"
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
}
