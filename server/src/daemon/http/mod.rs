//! cairnd's CloudTrail-compatible HTTP API (`--http-listen`): the AWS JSON
//! 1.1 protocol of CloudTrail (`POST /` with `X-Amz-Target`), authenticated
//! by AWS Signature Version 4, so the AWS CLI, boto3 and other SDKs work
//! against cairnd with `--endpoint-url`. docs/HTTP-API.md is the contract.
//!
//! hyper serves HTTP/1.1 on a tokio runtime of its own thread (two
//! workers); engine calls run on tokio's blocking pool so a slow lookup
//! never stalls the connections. The listener shares the TCP protocol's
//! TLS configuration, connection limit and idle timeout, and stops with it:
//! on shutdown it stops accepting, lets each connection finish the request
//! it is serving, and its thread is joined before the store closes.
//!
//! Files: `mod.rs` (listener, connections, authentication, errors),
//! `cloudtrail.rs` (CloudTrail's operations), `lake.rs` (Lake's query
//! API and the store as an event data store), `audit.rs` (cloudtrail-data's
//! PutAuditEvents, REST-JSON on `POST /PutAuditEvents`).

mod audit;
mod cloudtrail;
mod lake;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};

use crate::protocol::Role;
use crate::sigv4;

use super::Shared;

/// Largest request body accepted (PutAuditEvents allows 1 MB of events).
pub const BODY_BYTES_MAX: usize = 2 << 20;
/// A request body must arrive within this long once its headers have.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A TLS handshake must finish within this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that makes no progress for this long (a client that stopped
/// reading its answers) ends the connection.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// At shutdown, a connection gets this long to finish its request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Connections over the limit get a 503 within this long, or are dropped.
const OVER_LIMIT_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many connections over the limit are answered at once;
/// more are closed on arrival.
const OVER_LIMIT_ANSWERED_MAX: usize = 64;
/// CloudTrail's JSON 1.1 operations: `X-Amz-Target` is this, a dot, and
/// the operation's name.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// Starts the HTTP API's thread on a bound listener; it returns once the
/// daemon's shutdown flag is set and every connection has finished.
pub(super) fn spawn(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("cairnd-http")
        .enable_io()
        .enable_time()
        .build()
        .context("starting the HTTP API's runtime")?;
    Ok(std::thread::Builder::new().name("cairnd-http-accept".into()).spawn(move || {
        if let Err(e) = rt.block_on(accept_loop(listener, shared)) {
            tracing::error!("the HTTP API stopped: {e:#}");
        }
        rt.shutdown_timeout(Duration::from_secs(5));
    })?)
}

/// What the accept loop's connections share besides the daemon.
#[derive(Clone, Default)]
struct Gauges {
    /// Connections over the limit being answered 503.
    shed: Arc<std::sync::atomic::AtomicUsize>,
    /// Operations running on the blocking pool: the store closes only
    /// after the last one ends.
    blocking: Arc<std::sync::atomic::AtomicUsize>,
}

/// Decrements a gauge when dropped.
struct Gauge(Arc<std::sync::atomic::AtomicUsize>);

impl Gauge {
    fn up(g: &Arc<std::sync::atomic::AtomicUsize>) -> (Gauge, usize) {
        let n = g.fetch_add(1, Ordering::SeqCst) + 1;
        (Gauge(g.clone()), n)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let tls = shared.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gauges = Gauges::default();
    let mut conns = tokio::task::JoinSet::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        // Accept with a short timeout so the shutdown flag is noticed.
        let accepted = match tokio::time::timeout(Duration::from_millis(100), listener.accept()).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                tracing::warn!("HTTP accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Ok(Ok(a)) => a,
        };
        while conns.try_join_next().is_some() {}
        let (stream, peer) = accepted;
        conns.spawn(connection(stream, peer, shared.clone(), tls.clone(), stop_rx.clone(), gauges.clone()));
    }
    tracing::info!("HTTP API: finishing in-flight requests");
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    // An operation whose client went away still runs to its end on the
    // blocking pool, holding the store: wait for it.
    while gauges.blocking.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A connection's IO with a deadline on writes, so a client that stops
/// reading its answers cannot hold a connection (and a place under the
/// limit) for ever; reads are bounded by hyper's header timeout and the
/// body timeout.
struct WriteDeadline<I> {
    io: I,
    stall: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<I> WriteDeadline<I> {
    fn new(io: I) -> Self {
        WriteDeadline { io, stall: Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)), armed: false }
    }

    fn watch<T>(&mut self, cx: &mut std::task::Context<'_>, r: std::task::Poll<std::io::Result<T>>) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        if r.is_ready() {
            self.armed = false;
            return r;
        }
        if !self.armed {
            self.stall.as_mut().reset(tokio::time::Instant::now() + WRITE_STALL_TIMEOUT);
            self.armed = true;
        }
        match self.stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for WriteDeadline<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for WriteDeadline<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

/// Counts a connection in the daemon-wide count until dropped.
struct Counted(Arc<Shared>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every request of a connection needs.
struct Conn {
    shared: Arc<Shared>,
    /// The connection arrived over the daemon's connection limit: its
    /// requests are answered 503 and it is closed.
    over_limit: bool,
    peer: SocketAddr,
    gauges: Gauges,
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: tokio::sync::watch::Receiver<bool>,
    gauges: Gauges,
) {
    let n = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let _counted = Counted(shared.clone());
    let over_limit = n > shared.cfg.connections_max;
    let mut _shed = None;
    if over_limit {
        let (g, shed) = Gauge::up(&gauges.shed);
        if shed > OVER_LIMIT_ANSWERED_MAX {
            tracing::debug!(%peer, "HTTP connection over the limit: closed");
            return;
        }
        _shed = Some(g);
        tracing::warn!(limit = shared.cfg.connections_max, %peer, "HTTP connection over the limit: answering 503");
    }
    let _ = stream.set_nodelay(true);
    let handshake = if over_limit { OVER_LIMIT_TIMEOUT } else { TLS_HANDSHAKE_TIMEOUT };
    let conn = Arc::new(Conn { shared: shared.clone(), over_limit, peer, gauges });
    match tls {
        None => serve(WriteDeadline::new(TokioIo::new(stream)), conn, stop).await,
        Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
            Ok(Ok(s)) => serve(WriteDeadline::new(TokioIo::new(s)), conn, stop).await,
            Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

async fn serve<I>(io: I, conn: Arc<Conn>, mut stop: tokio::sync::watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let keep_alive = !conn.over_limit;
    let idle = if conn.over_limit { OVER_LIMIT_TIMEOUT } else { conn.shared.cfg.idle_timeout };
    let svc = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(req, conn).await) }
    });
    // The header read timeout runs from when the connection waits for a
    // request's first byte: the idle timeout of a kept-alive connection.
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(keep_alive)
        .max_buf_size(64 << 10)
        .serve_connection(io, svc);
    let mut http = std::pin::pin!(http);
    tokio::select! {
        r = http.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        // (The watch's guard is dropped at once: it must not live across
        // the awaits below.)
        _ = async { drop(stop.wait_for(|s| *s).await) } => {
            http.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, http).await {
                Ok(Err(e)) => tracing::debug!(%peer, "HTTP connection ended at shutdown: {e}"),
                Err(_) => tracing::warn!(%peer, "HTTP connection cut at shutdown: its request did not finish in {} s", SHUTDOWN_GRACE.as_secs()),
                Ok(Ok(())) => {}
            }
        }
    }
}

/// An error as AWS's JSON protocols send it: the HTTP status, the error
/// name (`__type`) and a message.
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code, message: message.into() }
    }
}

impl From<sigv4::AuthError> for ApiError {
    fn from(e: sigv4::AuthError) -> Self {
        ApiError { status: e.status, code: e.code, message: e.message }
    }
}

/// A random version-4 UUID: request ids, eventIDs, channel ARNs.
pub(super) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // The id only labels a response; a clock-derived one will do.
        b = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos().to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn respond(status: u16, body: Vec<u8>, request_id: &str, error_type: Option<&str>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-ErrorType", t);
    }
    r
}

/// AWS's JSON protocols send errors alike: `__type` and `message` in the
/// body, the type again in `x-amzn-ErrorType` (which REST-JSON clients
/// read first).
fn error_response(e: &ApiError, request_id: &str, content_type: &'static str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": e.code, "message": e.message });
    respond(e.status, body.to_string().into_bytes(), request_id, Some(e.code), content_type)
}

/// Which API a request is for, by its path and `X-Amz-Target`.
enum Route {
    /// CloudTrail's JSON 1.1 API; the operation's name.
    CloudTrail(String),
    /// cloudtrail-data's PutAuditEvents (REST-JSON).
    PutAuditEvents,
}

impl Route {
    fn signing_name(&self) -> &'static str {
        match self {
            Route::CloudTrail(_) => "cloudtrail",
            Route::PutAuditEvents => "cloudtrail-data",
        }
    }
}

/// JSON 1.1 on `/`, plain JSON on REST-JSON paths.
fn content_type(path: &str) -> &'static str {
    if path == "/" {
        JSON_1_1
    } else {
        "application/json"
    }
}

fn route(req: &Request<Incoming>) -> Result<Route, ApiError> {
    let unknown =
        || ApiError::new("UnknownOperationException", format!("{} {} is not an operation of this server", req.method(), req.uri().path()));
    if req.method() == hyper::Method::POST && req.uri().path() == "/PutAuditEvents" {
        return Ok(Route::PutAuditEvents);
    }
    if req.method() != hyper::Method::POST || req.uri().path() != "/" {
        return Err(ApiError { status: 404, ..unknown() });
    }
    let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).ok_or_else(unknown)?;
    match target.strip_prefix(TARGET_PREFIX).and_then(|t| t.strip_prefix('.')) {
        Some(op) if !op.is_empty() => Ok(Route::CloudTrail(op.to_string())),
        _ => Err(ApiError::new(
            "UnknownOperationException",
            format!("unknown X-Amz-Target {target:?}: this server speaks {TARGET_PREFIX}.<Operation>"),
        )),
    }
}

async fn handle(req: Request<Incoming>, conn: Arc<Conn>) -> Response<Full<Bytes>> {
    let rid = uuid_v4();
    let ct = content_type(req.uri().path());
    match answer(req, &conn, &rid).await {
        Ok(body) => respond(200, body, &rid, None, ct),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(request_id = %rid, peer = %conn.peer, code = e.code, "{}", e.message);
            } else {
                tracing::debug!(request_id = %rid, peer = %conn.peer, code = e.code, "{}", e.message);
            }
            error_response(&e, &rid, ct)
        }
    }
}

async fn answer(req: Request<Incoming>, conn: &Conn, rid: &str) -> Result<Vec<u8>, ApiError> {
    if conn.over_limit {
        let limit = conn.shared.cfg.connections_max;
        return Err(ApiError {
            status: 503,
            code: "ServiceUnavailableException",
            message: format!("the server's connection limit of {limit} is reached; retry later"),
        });
    }
    let route = route(&req)?;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = |n: String| ApiError {
        status: 413,
        code: "RequestEntityTooLargeException",
        message: format!("the request body is {n} bytes; the limit is {BODY_BYTES_MAX}"),
    };
    if let Some(n) = declared.filter(|n| *n > BODY_BYTES_MAX as u64) {
        return Err(too_large(n.to_string()));
    }
    let (parts, body) = req.into_parts();
    let claimed = identify(&parts, conn)?;
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, BODY_BYTES_MAX).collect()).await {
        Err(_) => {
            return Err(ApiError::new(
                "RequestTimeoutException",
                format!("the request body did not arrive within {} seconds", BODY_READ_TIMEOUT.as_secs()),
            ))
        }
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(too_large(format!("more than {BODY_BYTES_MAX}")))
        }
        Ok(Err(e)) => return Err(ApiError::new("SerializationException", format!("reading the request body: {e}"))),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let shared = conn.shared.clone();
    let (peer, rid) = (conn.peer, rid.to_string());
    let (gauge, _) = Gauge::up(&conn.gauges.blocking);
    // Hashing the body and the engine call block: off the async threads.
    tokio::task::spawn_blocking(move || {
        let _gauge = gauge;
        let (role, access_key_id) = authenticate(&parts, &body, claimed, &shared, peer, route.signing_name())?;
        tracing::debug!(request_id = %rid, %access_key_id, path = %parts.uri.path(), "HTTP API request");
        let query = parts.uri.query().unwrap_or("");
        let caller = Caller { access_key_id: &access_key_id, role };
        match route {
            Route::CloudTrail(op) => cloudtrail::call(&shared, &op, &caller, &body),
            Route::PutAuditEvents => audit::put_audit_events(&shared, &caller, query, &body),
        }
    })
    .await
    .unwrap_or_else(|e| Err(ApiError { status: 500, code: "InternalFailure", message: format!("the request's worker failed: {e}") }))
}

fn sigv4_request<'a>(parts: &'a hyper::http::request::Parts, body_sha256: String) -> sigv4::HttpRequest<'a> {
    sigv4::HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: parts.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect(),
        body_sha256,
    }
}

/// A request's claimed identity, read from its headers before its body:
/// requests with no signature or an unknown key are refused before cairnd
/// buffers their bodies.
struct Claimed {
    presented: sigv4::Presented,
    role: Role,
    material: [u8; 32],
}

fn identify(parts: &hyper::http::request::Parts, conn: &Conn) -> Result<Claimed, ApiError> {
    let Some(p) = sigv4::presented(&sigv4_request(parts, String::new()))? else {
        return Err(ApiError {
            status: 403,
            code: "MissingAuthenticationTokenException",
            message: "Missing Authentication Token: sign requests with AWS Signature Version 4 using a key from `cairn token create --aws`"
                .into(),
        });
    };
    let Some((role, material)) = conn.shared.aws_keys.get(&p.access_key_id) else {
        tracing::warn!(peer = %conn.peer, access_key_id = %p.access_key_id, "HTTP API: unknown access key");
        return Err(ApiError::new("UnrecognizedClientException", "The security token included in the request is invalid."));
    };
    if p.security_token.is_some() {
        return Err(ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid: cairnd issues long-term keys only; unset AWS_SESSION_TOKEN",
        ));
    }
    Ok(Claimed { presented: p, role, material })
}

/// Checks the claimed identity's SigV4 signature over the whole request;
/// the role and id of its access key.
fn authenticate(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    claimed: Claimed,
    shared: &Shared,
    peer: SocketAddr,
    service: &str,
) -> Result<(Role, String), ApiError> {
    let req = sigv4_request(parts, hex::encode(Sha256::digest(body)));
    let p = claimed.presented;
    let now = super::now_ms().div_euclid(1000);
    // On `/` the operation is named by X-Amz-Target: the signature must
    // cover it, or one signed body could be replayed as another operation.
    let must_sign: &[&str] = if service == "cloudtrail" { &["x-amz-target"] } else { &[] };
    let want = sigv4::Expect { service, region: shared.cfg.http_region.as_deref(), now, must_sign };
    if let Err(e) = sigv4::verify(&req, &p, &claimed.material, &want) {
        tracing::warn!(%peer, access_key_id = %p.access_key_id, code = e.code, "HTTP API: signature refused: {:?}", e.message);
        return Err(e.into());
    }
    Ok((claimed.role, p.access_key_id))
}

/// Who is calling: the access key's id and role.
pub(super) struct Caller<'a> {
    pub access_key_id: &'a str,
    pub role: Role,
}

impl Caller<'_> {
    /// Refuses the call unless the key's role is `need` or admin, with
    /// the error AWS sends when IAM denies an action.
    pub fn require(&self, need: Role, action: &str) -> Result<(), ApiError> {
        if self.role == Role::Admin || self.role == need {
            return Ok(());
        }
        Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "User: {} (role {}) is not authorized to perform: {action}; it needs a {} or admin key",
                self.access_key_id,
                self.role.name(),
                need.name()
            ),
        ))
    }
}
