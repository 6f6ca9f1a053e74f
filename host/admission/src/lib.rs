//! `weft-admission`: admission control — what any client, however many, however slow, may hold
//! of a server — enforced in one place, the loop that accepts connections and hands their
//! requests to the routes ([`serve`]). Both of Weft's servers run in it: `weft serve` (settings
//! from `limits.*`, weft-rest's `admission`) and `weft genesis` (weft-genesis), each naming its
//! own settings and answering refusals in its own error shape ([`Answers`]).
//!
//! * **Connections:** at most [`Admission::max_connections`] open at once; a connection past it
//!   is closed as soon as it is accepted (not queued), so the server never runs out of file
//!   descriptors and the accept loop never spins on `EMFILE`.
//! * **Header read:** a request's headers must arrive within
//!   [`Admission::header_read_timeout`] of its first byte (a TLS handshake counts as part of the
//!   first request); a half request line or a byte-a-second sender is closed then.
//! * **Idle:** a connection with no request in progress and no byte sent or received for
//!   [`Admission::idle_timeout`] is closed (kept-alive connections, silent connections).
//! * **Requests in progress:** at most [`Admission::max_requests_in_progress`] answered at once;
//!   past it a request is answered 503 with `Retry-After` and the server's error body at once
//!   ([`Answers::too_many_requests`]).
//! * **Request time:** a request (body included) not answered within
//!   [`Admission::request_timeout`] is stopped and answered 503 ([`Answers::too_slow`]) — except
//!   those the server exempts ([`Answers::unbounded`]). The time runs until the answer's
//!   headers: a streamed answer body is bounded by the idle timeout (no byte for that long)
//!   instead.
//!
//! Connections are served by hyper (HTTP/1.1 and HTTP/2) with poem's request and response
//! types, as `poem::Server` does; the timeouts are measured on the connection's bytes (a
//! watchdog per connection), so they hold for TLS connections too.
//!
//! Owns: the accept loop and the connections' lifetimes. Must not know: any route, contract or
//! configuration file (the names of settings and the refusals' bodies come from the server).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use poem::listener::BoxAcceptor;
use poem::{Endpoint, EndpointExt, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Seconds a client refused for too many requests in progress is asked to wait.
pub const RETRY_AFTER_S: u64 = 1;

/// How long the accept loop pauses after the operating system refused to accept (e.g. out of
/// file descriptors), instead of asking again at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How often a repeated refusal (connections over the cap, accept errors) is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What a server says when admission refuses, and how it names its settings in log lines.
pub trait Answers: Send + Sync + 'static {
    /// The answer (a 503 with the server's error body) to a request refused because
    /// `max_requests_in_progress` requests are being answered already; [`serve`] adds
    /// `Retry-After: RETRY_AFTER_S`.
    fn too_many_requests(&self, max_requests_in_progress: usize) -> Response;
    /// The answer (a 503 with the server's error body) to a request stopped because it was not
    /// answered within `request_timeout`.
    fn too_slow(&self, request_timeout: Duration) -> Response;
    /// Whether `req` may take as long as it takes (no request timeout). None by default.
    fn unbounded(&self, req: &poem::Request) -> bool {
        let _ = req;
        false
    }
    /// The names of the settings, for log lines.
    fn names(&self) -> Names;
}

/// How a server's log lines name its admission settings (e.g. `limits.max_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    /// [`Admission::max_connections`].
    pub max_connections: &'static str,
    /// [`Admission::header_read_timeout`] (its value is logged in milliseconds).
    pub header_read_timeout: &'static str,
    /// [`Admission::idle_timeout`] (its value is logged in milliseconds).
    pub idle_timeout: &'static str,
}

/// The settings of [`serve`].
#[derive(Clone)]
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
    /// What the server answers when admission refuses, and its settings' names.
    pub answers: Arc<dyn Answers>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("max_connections", &self.max_connections)
            .field("max_requests_in_progress", &self.max_requests_in_progress)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("names", &self.answers.names())
            .finish()
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
                    "{} connections closed at once since the last report: {} are open, {} = {}",
                    refused.take(),
                    open.load(Ordering::Acquire),
                    settings.answers.names().max_connections,
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
        let mut resp = settings
            .answers
            .too_many_requests(settings.max_requests_in_progress);
        resp.headers_mut().insert(
            poem::http::header::RETRY_AFTER,
            poem::http::HeaderValue::from(RETRY_AFTER_S),
        );
        return resp;
    };
    if settings.answers.unbounded(&req) {
        return ep.get_response(req).await;
    }
    match tokio::time::timeout(settings.request_timeout, ep.get_response(req)).await {
        Ok(resp) => resp,
        Err(_) => settings.answers.too_slow(settings.request_timeout),
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

    /// Bytes arrived: they start a request's headers when no request is in progress (and wake
    /// the watchdog to that deadline).
    fn read(&self) {
        let now = self.now();
        self.last_byte.store(now, Ordering::Release);
        if self.in_progress.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // The watchdog may be asleep until the idle deadline: the header deadline is
            // earlier.
            self.changed.notify_one();
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
    let names = settings.answers.names();
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
                format!("idle for {} = {idle_ms} ms", names.idle_timeout),
            ),
            started if started.saturating_add(header_ms) < idle_at => (
                started.saturating_add(header_ms),
                format!(
                    "its request's headers did not arrive within {} = {header_ms} ms",
                    names.header_read_timeout
                ),
            ),
            _ => (
                idle_at,
                format!("silent for {} = {idle_ms} ms", names.idle_timeout),
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

#[cfg(test)]
mod tests {
    use super::*;
    use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Plain;

    impl Answers for Plain {
        fn too_many_requests(&self, _: usize) -> Response {
            Response::builder()
                .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                .finish()
        }
        fn too_slow(&self, _: Duration) -> Response {
            Response::builder()
                .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                .finish()
        }
        fn names(&self) -> Names {
            Names {
                max_connections: "max",
                header_read_timeout: "header",
                idle_timeout: "idle",
            }
        }
    }

    /// Half a request line is closed after the header timeout, never only after the (much
    /// longer) idle timeout, whichever of the connection and its watchdog sees the bytes first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_request_lines_are_closed_after_the_header_timeout_not_the_idle_one() {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let settings = Admission {
            max_connections: 1000,
            max_requests_in_progress: 10,
            header_read_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            answers: Arc::new(Plain),
        };
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            acceptor.boxed(),
            poem::endpoint::make_sync(|_| "ok"),
            settings,
            stop.clone().cancelled_owned(),
            Duration::from_secs(1),
        ));
        let started = Instant::now();
        let mut conns = vec![];
        for _ in 0..100 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /pe").await.unwrap();
            conns.push(s);
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "connection {i} still open {:?} after it was opened: {read:?}",
                started.elapsed()
            );
        }
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
