//! `lab serve`: the report's page, live, on 127.0.0.1 only (axum).
//!
//! `GET /` renders the page from the research memory on each request (the
//! same views as `lab report`, nothing cached); `GET /report.json` the same
//! data as JSON; `GET /events` is a stream of server-sent events: `progress`
//! every second (each running experiment's elapsed time and last reported
//! metrics) and `changed` when the research memory changed (the page reloads).
//!
//! Invariants: read-only, with no write endpoint (any other method is 405),
//! and nothing reads the held-out split. The socket is bound to the loopback
//! address and a request whose `Host` is not the loopback (a page elsewhere
//! reaching it through DNS rebinding) is refused with 403. Each request opens
//! its own connection on a blocking thread: SQLite never blocks the server.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};

use crate::report::{self, LeafView};
use crate::root::LabRoot;
use crate::store::queries;

/// How often the event stream looks at the research memory.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Served {
    lab: LabRoot,
    /// Only this leaf; `None`: every leaf.
    leaf: Option<std::path::PathBuf>,
}

/// Serve until the process is stopped; `ready` gets the address once bound.
pub fn serve(lab: LabRoot, leaf: Option<std::path::PathBuf>, port: u16, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        ready(listener.local_addr()?);
        let app = Router::new()
            .route("/", get(page))
            .route("/report.json", get(data))
            .route("/events", get(events))
            .layer(middleware::from_fn(loopback_only))
            .with_state(Served { lab, leaf });
        axum::serve(listener, app).await.context("the server stopped")
    })
}

/// Refuse a request addressed to any host but the loopback (DNS rebinding).
async fn loopback_only(request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if matches!(name, "127.0.0.1" | "localhost") {
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "lab serve answers requests to 127.0.0.1 or localhost only\n").into_response()
    }
}

async fn page(State(s): State<Served>) -> Response {
    match views(s.clone()).await {
        Ok(views) => match report::render(&s.lab.manifest.name, &views, true) {
            Ok(html) => Html(html).into_response(),
            Err(e) => failure(&e),
        },
        Err(e) => failure(&e),
    }
}

async fn data(State(s): State<Served>) -> Response {
    match views(s).await {
        Ok(views) => Json(json!({ "leaves": views })).into_response(),
        Err(e) => failure(&e),
    }
}

fn failure(e: &anyhow::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("error: {e:#}\n")).into_response()
}

/// The views, gathered on a blocking thread.
async fn views(s: Served) -> Result<Vec<LeafView>> {
    blocking(move || {
        let store = s.lab.open_store()?;
        let leaf = s.leaf.as_deref().map(crate::leaf::Leaf::load).transpose()?;
        report::views(&s.lab, &store, leaf.as_ref())
    })
    .await
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.context("a request's worker thread failed")?
}

/// `progress` every tick; `changed` when the research memory's version moved.
async fn events(State(s): State<Served>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = stream::unfold((s, None), |(s, last)| async move {
        tokio::time::sleep(TICK).await;
        let lab = s.lab.clone();
        let looked = blocking(move || look(&lab)).await;
        let (event, seen) = match looked {
            Ok((version, _)) if last.is_some_and(|l| l != version) => {
                (Event::default().event("changed").data(""), Some(version))
            }
            Ok((version, progress)) => (Event::default().event("progress").data(progress.to_string()), Some(version)),
            Err(e) => (Event::default().event("failed").data(format!("{e:#}")), last),
        };
        Some((Ok(event), (s, seen)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

/// The research memory's version and the running experiments' progress.
fn look(lab: &LabRoot) -> Result<((i64, i64), Value)> {
    let store = lab.open_store()?;
    let version = queries::version(store.conn())?;
    let query = queries::HistoryQuery { running: true, ..queries::HistoryQuery::default() };
    let running = queries::history(store.conn(), &query)?;
    let progress: Vec<Value> = report::running(lab, &running)
        .into_iter()
        .map(|r| json!({ "experiment": r.experiment, "elapsed": r.clock(), "last": r.last_text() }))
        .collect();
    Ok((version, Value::Array(progress)))
}
