//! A TCP proxy in front of each node, through which the agents and the runner's own
//! devices reach it, so the schedule can do to their links what networks do: cut them
//! (every open connection closed at once), stall them (nothing forwarded either way for
//! a while, new connections held too) or slow them (each chunk held back). The app
//! backend talks to the nodes directly.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How a proxy's links behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Open,
    /// Nothing is forwarded until it is open again.
    Stalled,
    /// Each chunk is held back this long.
    Slow(Duration),
}

/// A proxy to one node.
pub struct Proxy {
    /// Its address, as an `http://` URL.
    pub url: String,
    link: watch::Sender<Link>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`), until
    /// `stop`.
    pub async fn start(upstream: String, stop: CancellationToken) -> Result<Arc<Self>, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let proxy = Arc::new(Self {
            url: format!("http://{addr}"),
            link: watch::Sender::new(Link::Open),
            cuts: watch::Sender::new(0),
        });
        let serving = proxy.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                if let Ok((inbound, _)) = accepted {
                    let (link, cuts) = (serving.link.subscribe(), serving.cuts.subscribe());
                    tokio::spawn(connect(inbound, upstream.clone(), link, cuts));
                }
            }
        });
        Ok(proxy)
    }

    /// Closes every connection open through it.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Sets how its links behave from now on.
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// One proxied connection, both ways, until either side ends or it is cut.
async fn connect(
    inbound: TcpStream,
    upstream: String,
    link: watch::Receiver<Link>,
    mut cuts: watch::Receiver<u64>,
) {
    cuts.mark_unchanged();
    let Ok(outbound) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pump(in_read, out_write, link.clone(), cuts.clone());
    let down = pump(out_read, in_write, link, cuts);
    // Either way ending (or a cut) ends both: the halves drop and the sockets close.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Forwards `from` to `to` as the link allows, until `from` ends or a cut.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
    mut cuts: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = cuts.changed() => return,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        loop {
            let state = *link.borrow_and_update();
            match state {
                Link::Open => break,
                Link::Slow(by) => {
                    tokio::select! {
                        () = tokio::time::sleep(by) => break,
                        _ = cuts.changed() => return,
                    }
                }
                Link::Stalled => {
                    tokio::select! {
                        changed = link.changed() => if changed.is_err() { return },
                        _ = cuts.changed() => return,
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
