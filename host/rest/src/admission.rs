//! Admission control: what any client — however many, however slow — may hold of the server,
//! enforced in one place, the loop that accepts connections and hands their requests to the
//! routes ([`serve`]).
//!
//! * **Connections:** at most `limits.max_connections` open at once; a connection past it is
//!   closed as soon as it is accepted (not queued), so the server never runs out of file
//!   descriptors and the accept loop never spins on `EMFILE`.
//! * **Header read:** a request's headers must arrive within `limits.header_read_timeout_ms` of
//!   its first byte (a TLS handshake counts as part of the first request); a half request line
//!   or a byte-a-second sender is closed then.
//! * **Idle:** a connection with no request in progress and no byte sent or received for
//!   `limits.idle_timeout_ms` is closed (kept-alive connections, silent connections).
//! * **Requests in progress:** at most `limits.max_requests_in_progress` answered at once; past
//!   it a request is answered 503 with `Retry-After` and the contract's error body at once.
//! * **Request time:** a request (body included) not answered within
//!   `limits.request_timeout_ms` is stopped and answered 503 — except `POST /backups`, which
//!   takes as long as the copy does (root only, one at a time).
//!
//! Connections are served by hyper (HTTP/1.1 and HTTP/2) with poem's request and response
//! types, as `poem::Server` does; the timeouts are measured on the connection's bytes (a
//! watchdog per connection), so they hold for TLS connections too.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::listener::BoxAcceptor;
use poem::{Endpoint, EndpointExt, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{ErrorResponse, BASE_PATH};

/// Seconds a client refused for too many requests in progress is asked to wait.
pub const RETRY_AFTER_S: u64 = 1;

/// How long the accept loop pauses after the operating system refused to accept (e.g. out of
/// file descriptors), instead of asking again at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How often a repeated refusal (connections over the cap, accept errors) is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The settings of [`serve`], from `limits.*`.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most requests being answered at once.
    pub max_requests_in_progress: usize,
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// No request in progress and no byte either way.
    pub idle_timeout: Duration,
    /// From the request's headers to its answer's headers.
    pub request_timeout: Duration,
}

impl Admission {
    /// The settings of `limits`, with `max_connections` already settled against the
    /// open-file limit ([`weft_core::Limits::connection_cap`]).
    pub fn new(limits: &weft_core::Limits, max_connections: usize) -> Self {
        Admission {
            max_connections,
            max_requests_in_progress: limits.max_requests_in_progress,
            header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
            request_timeout: Duration::from_millis(limits.request_timeout_ms),
        }
    }
}

/// Serves `ep` on the connections of `acceptor` under the admission rules of `settings` until
/// `shutdown` resolves; then stops accepting, lets the requests in progress finish (at most
/// `grace`) and returns.
pub async fn serve<E>(
    mut acceptor: BoxAcceptor,
    ep: E,
    settings: Admission,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep: Arc<dyn poem::endpoint::DynEndpoint<Output = Response>> =
        Arc::from(ep.map_to_response().boxed());
    let settings = Arc::new(settings);
    let requests = Arc::new(Semaphore::new(settings.max_requests_in_progress));
    let open = Arc::new(AtomicUsize::new(0));
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut refused = Refusals::default();
    let mut errors = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        let (io, local, remote, scheme) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if errors.count() {
                    tracing::error!(
                        "cannot accept connections: {e} ({} times since the last report); pausing {} ms each time",
                        errors.take(),
                        ACCEPT_ERROR_PAUSE.as_millis()
                    );
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if open.load(Ordering::Acquire) >= settings.max_connections {
            // Closed at once: a client over the cap learns it now, and holds nothing.
            drop(io);
            if refused.count() {
                tracing::warn!(
                    "{} connections closed at once since the last report: {} are open, limits.max_connections = {}",
                    refused.take(),
                    open.load(Ordering::Acquire),
                    settings.max_connections
                );
            }
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let conn = Connection {
            ep: ep.clone(),
            settings: settings.clone(),
            requests: requests.clone(),
            stopping: stopping.clone(),
            local,
            remote,
            scheme,
        };
        let open = open.clone();
        connections.spawn(async move {
            conn.serve(io).await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
    drop(acceptor);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connections still open {} s after the shutdown began; closing them",
            connections.len(),
            grace.as_secs()
        );
    }
    Ok(())
}

/// A count of repeated events, reported at most every [`LOG_EVERY`].
#[derive(Default)]
struct Refusals {
    since_report: u64,
    last_report: Option<Instant>,
}

impl Refusals {
    /// Counts one; whether to report now.
    fn count(&mut self) -> bool {
        self.since_report += 1;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due {
            self.last_report = Some(Instant::now());
        }
        due
    }

    /// The count since the last report (and starts again).
    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.since_report)
    }
}

/// One accepted connection.
struct Connection {
    ep: Arc<dyn poem::endpoint::DynEndpoint<Output = Response>>,
    settings: Arc<Admission>,
    requests: Arc<Semaphore>,
    stopping: CancellationToken,
    local: poem::web::LocalAddr,
    remote: poem::web::RemoteAddr,
    scheme: poem::http::uri::Scheme,
}

impl Connection {
    async fn serve<Io>(self, io: Io)
    where
        Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let activity = Arc::new(Activity::new());
        let Connection {
            ep,
            settings,
            requests,
            stopping,
            local,
            remote,
            scheme,
        } = self;
        let peer = remote.to_string();
        let service = hyper::service::service_fn({
            let activity = activity.clone();
            let settings = settings.clone();
            move |req: poem::http::Request<hyper::body::Incoming>| {
                // Counted from here (the headers are in) until the answer's headers are out.
                let in_progress = activity.begin_request();
                let ep = ep.clone();
                let settings = settings.clone();
                let requests = requests.clone();
                let req = poem::Request::from((req, local.clone(), remote.clone(), scheme.clone()));
                async move {
                    let resp = admit(ep.as_ref(), &settings, &requests, req).await;
                    drop(in_progress);
                    Ok::<_, Infallible>(hyper::Response::from(resp))
                }
            }
        });
        let builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        let io = hyper_util::rt::TokioIo::new(Tracked {
            inner: io,
            activity: activity.clone(),
        });
        let conn = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let watchdog = watch(&activity, &settings);
        tokio::pin!(watchdog);
        tokio::select! {
            _ = conn.as_mut() => return,
            why = &mut watchdog => {
                tracing::debug!("closing the connection of {peer}: {why}");
                return;
            }
            _ = stopping.cancelled() => {}
        }
        // Shutting down: the connection finishes what it is answering, then closes; one that is
        // idle or half-way through a request's headers is still closed by the watchdog.
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = &mut watchdog => {}
        }
    }
}

/// Answers `req` through `ep` when a place among the requests in progress is free and within
/// the request timeout; otherwise the 503.
async fn admit(
    ep: &dyn poem::endpoint::DynEndpoint<Output = Response>,
    settings: &Admission,
    requests: &Semaphore,
    req: poem::Request,
) -> Response {
    let Ok(_place) = requests.try_acquire() else {
        let mut resp = ErrorResponse::new(format!(
            "the server is answering limits.max_requests_in_progress = {} requests already; send this one again after Retry-After seconds (or raise limits.max_requests_in_progress in the configuration)",
            settings.max_requests_in_progress
        ))
        .response(StatusCode::SERVICE_UNAVAILABLE);
        resp.headers_mut().insert(
            poem::http::header::RETRY_AFTER,
            poem::http::HeaderValue::from(RETRY_AFTER_S),
        );
        return resp;
    };
    // A backup takes as long as the copy of the store does.
    let unbounded = req.method() == poem::http::Method::POST
        && req.uri().path() == format!("{BASE_PATH}/backups");
    if unbounded {
        return ep.get_response(req).await;
    }
    match tokio::time::timeout(
        settings.request_timeout,
        ep.get_response(req),
    )
    .await
    {
        Ok(resp) => resp,
        Err(_) => ErrorResponse::new(format!(
            "the request was not answered within limits.request_timeout_ms = {} ms and was stopped (a write it made may be stored in part: read before writing again); ask for less at once — a smaller batch, page or query — or raise limits.request_timeout_ms in the configuration",
            settings.request_timeout.as_millis()
        ))
        .response(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// What a connection's watchdog needs to know: when a byte last went either way, whether a
/// request's headers are being read (since when), and how many requests are in progress.
/// Times are milliseconds since the connection was accepted.
struct Activity {
    accepted: Instant,
    last_byte: AtomicU64,
    head_started: AtomicU64,
    in_progress: AtomicUsize,
    changed: Notify,
}

/// No request's headers are being read.
const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity {
            accepted: Instant::now(),
            last_byte: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            in_progress: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    /// Bytes arrived: they start a request's headers when no request is in progress.
    fn read(&self) {
        let now = self.now();
        self.last_byte.store(now, Ordering::Release);
        if self.in_progress.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn wrote(&self) {
        self.last_byte.store(self.now(), Ordering::Release);
    }

    /// A request's headers are in: it is in progress until the guard is dropped.
    fn begin_request(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        self.changed.notify_one();
        InProgress(self.clone())
    }
}

/// A request in progress on its connection.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.last_byte.store(self.0.now(), Ordering::Release);
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Resolves, saying why, when the connection is to be closed: its headers took too long, or it
/// has been idle too long.
async fn watch(activity: &Activity, settings: &Admission) -> String {
    let header_ms = settings.header_read_timeout.as_millis() as u64;
    let idle_ms = settings.idle_timeout.as_millis() as u64;
    loop {
        if activity.in_progress.load(Ordering::Acquire) > 0 {
            activity.changed.notified().await;
            continue;
        }
        let last = activity.last_byte.load(Ordering::Acquire);
        let head = activity.head_started.load(Ordering::Acquire);
        let idle_at = last.saturating_add(idle_ms);
        let (deadline, why) = match head {
            NONE => (
                idle_at,
                format!("idle for limits.idle_timeout_ms = {idle_ms} ms"),
            ),
            started if started.saturating_add(header_ms) < idle_at => (
                started.saturating_add(header_ms),
                format!("its request's headers did not arrive within limits.header_read_timeout_ms = {header_ms} ms"),
            ),
            _ => (
                idle_at,
                format!("silent for limits.idle_timeout_ms = {idle_ms} ms"),
            ),
        };
        let now = activity.now();
        if now >= deadline {
            return why;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(deadline - now)) => {}
            _ = activity.changed.notified() => {}
        }
    }
}

/// A connection's byte stream, reporting its bytes to the watchdog.
struct Tracked<Io> {
    inner: Io,
    activity: Arc<Activity>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Tracked<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Tracked<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
