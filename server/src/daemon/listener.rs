//! The accept loop: a thread per connection, bounded by the connection
//! limit, and the background threads started beside it.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::background::{insights_loop, maintenance_loop};
use super::connection::serve;
use super::Shared;

pub(super) fn accept_loop(listener: TcpListener, http: Option<TcpListener>, shared: Arc<Shared>) -> Result<()> {
    let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let http = match http {
        Some(l) => Some(super::http::spawn(l, shared.clone())?),
        None => None,
    };
    let maintenance = {
        let s = shared.clone();
        std::thread::Builder::new().name("cairnd-maintenance".into()).spawn(move || maintenance_loop(&s))?
    };
    let insights = if shared.cfg.insights {
        let s = shared.clone();
        Some(std::thread::Builder::new().name("cairnd-insights".into()).spawn(move || insights_loop(&s))?)
    } else {
        None
    };
    let delivery = match shared.deliverer.lock().take() {
        Some(d) => {
            let s = shared.clone();
            Some(std::thread::Builder::new().name("cairnd-deliver".into()).spawn(move || d.run(&s.store, &s.shutdown))?)
        }
        None => None,
    };
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                workers.retain(|w| !w.is_finished());
                let s = shared.clone();
                let spawned = std::thread::Builder::new().name("cairnd-conn".into()).spawn(move || {
                    tracing::debug!(%peer, "connection opened");
                    if let Err(e) = serve(stream, &s) {
                        tracing::warn!(%peer, "connection ended: {e:#}");
                    }
                });
                match spawned {
                    Ok(h) => workers.push(h),
                    Err(e) => tracing::error!("cannot start a connection thread: {e}"),
                }
            }
            // Nothing pending: the listener is non-blocking so the loop can
            // notice shutdown; wait a little before polling again.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    // Running SQL queries end now (CANCELLED): a connection streaming one
    // would otherwise hold the shutdown until the query's timeout.
    if let Some(q) = shared.queries.get() {
        q.cancel_all();
    }
    for w in workers {
        let _ = w.join();
    }
    if let Some(h) = http {
        let _ = h.join();
    }
    let _ = maintenance.join();
    if let Some(t) = insights {
        let _ = t.join();
    }
    if let Some(t) = delivery {
        let _ = t.join();
    }
    let shared = Arc::try_unwrap(shared).map_err(|_| anyhow::anyhow!("connections still hold the store"))?;
    if let Some(q) = shared.queries.get() {
        q.shutdown();
    }
    drop(shared.queries);
    // A cancelled query's scan thread lets go of the store at its next
    // batch.
    let mut store = shared.store;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let store = loop {
        match Arc::try_unwrap(store) {
            Ok(s) => break s,
            Err(s) if std::time::Instant::now() < deadline => {
                store = s;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                anyhow::bail!("queries still read the store after 30 s; it is not closed cleanly (the WAL recovers it at the next start)")
            }
        }
    };
    store.close().context("closing the store")?;
    tracing::info!("store closed");
    Ok(())
}

/// Decrements the connection count when a connection ends.
pub(super) struct ConnGuard<'a>(pub(super) &'a AtomicUsize);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
