//! Accepting connections: at most [`ServeConfig::max_connections`] open at once (beyond, new
//! ones wait in the operating system's accept queue until one closes), each served by hyper's
//! HTTP/1 with a timer, so that a client that has not sent a request's headers within
//! [`ServeConfig::header_timeout`] is cut off (an idle keep-alive connection too), and a
//! graceful stop: no new connections, the requests in flight answered.
//!
//! [`ServeConfig::max_connections`]: crate::ServeConfig::max_connections
//! [`ServeConfig::header_timeout`]: crate::ServeConfig::header_timeout

use std::future::Future;
use std::io::ErrorKind;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Serves `app` on the connections `listener` accepts, at most `max_connections` at once, until
/// `stop` completes; then closes the listener and waits for the connections' requests in flight.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = Arc::clone(&open).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
        };
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    wait_after(&error).await;
                    continue;
                }
            },
        };
        // Answers are small and written whole: send them without waiting for more.
        let _ = stream.set_nodelay(true);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that leaves, sends garbage or is too slow ends its own connection only.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// After a failed accept: a connection that failed on its own is skipped at once; anything else
/// (out of file descriptors, most often) is waited out for a moment rather than spun on.
async fn wait_after(error: &std::io::Error) {
    let one_connection = matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    );
    if !one_connection {
        eprintln!("caption-serve: accepting a connection failed: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
