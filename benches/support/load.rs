//! The load the service benchmarks make (shared by `service.rs` and `nodes.rs` through
//! `#[path]`): a minimal raw HTTP/1.1 keep-alive client (the cheapest load generator),
//! and the three measures: durable posts per second, the time from a POST to its
//! change frame on a device's channel, and fan-out deliveries per second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Concurrent posters of the throughput and fan-out measures.
pub const POSTERS: usize = 16;
/// Posts per second of the latency measure.
pub const LATENCY_RATE: u64 = 200;

/// Where and as whom one poster posts: a node's address, the app's `Authorization`
/// value, and the UNSID naming the user.
#[derive(Clone)]
pub struct Post {
    pub addr: String,
    pub auth: String,
    pub unsid: String,
    /// Encrypted content (`payload.encryptedContent`, for `unsid`) to send in place of
    /// visual content, the same for every post: the service's cost is what is measured,
    /// not the backend's encryption.
    pub sealed: Option<String>,
}

impl Post {
    /// The body of the post named `title`: the typical notification, or the same
    /// encrypted, with `title` as its group name so that frames can be matched to posts.
    pub fn body(&self, title: &str) -> String {
        let Some(content) = &self.sealed else {
            return body(title);
        };
        json!({
            "targetHostName": "bench.example.com",
            "groupName": title,
            "payload": {"encryptedContent": [{"unsid": self.unsid, "content": content}]},
            "priority": "High",
            "displayTimeToLive": "60"
        })
        .to_string()
    }
}

/// A device's channel to open: a node's address and the device's access token.
#[derive(Clone)]
pub struct Listen {
    pub addr: String,
    pub token: String,
}

/// A notification body of a typical size.
pub fn body(title: &str) -> String {
    json!({
        "targetHostName": "bench.example.com",
        "payload": {"visualContent": {"title": title, "body": "A notification body of a typical length, about eighty bytes long."}},
        "priority": "High",
        "displayTimeToLive": "60"
    })
    .to_string()
}

/// [`POSTERS`] posters for `duration`, poster `p`'s `i`th post going as
/// `posts[(p + i * POSTERS) % len]` (so with as many targets as posters each poster
/// keeps to one, with more they take turns), on keep-alive connections (one per node
/// and poster); every counted post was answered `201`.
pub async fn throughput(posts: &[Post], duration: Duration) -> (u64, Duration) {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for poster in 0..POSTERS {
        let (count, stop) = (count.clone(), stop.clone());
        let posts = posts.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conns: HashMap<String, Http> = HashMap::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let post = &posts[(poster + i * POSTERS) % posts.len()];
                if !conns.contains_key(&post.addr) {
                    conns.insert(post.addr.clone(), Http::connect(&post.addr).await);
                }
                let conn = conns.get_mut(&post.addr).unwrap();
                conn.post_notification(post, &format!("{poster}-{i}")).await;
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (count.load(Ordering::Relaxed), start.elapsed())
}

/// Opens `listen`'s channel and waits for its `synced`.
async fn open_channel(
    listen: &Listen,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/v1/me/channel?cursor=999999999", listen.addr);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", listen.token).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(text))) = socket.next().await
            && text.as_str().contains("\"synced\"")
        {
            return socket;
        }
    }
}

/// Posts as `post` at [`LATENCY_RATE`] for `duration` while `listen`'s channel is
/// open; for each post, the time from sending it to its change frame arriving.
pub async fn latency(listen: &Listen, post: &Post, duration: Duration) -> Vec<Duration> {
    let mut socket = open_channel(listen).await;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = duration.as_secs() * LATENCY_RATE;
    let poster = {
        let (sent, post) = (sent.clone(), post.clone());
        tokio::spawn(async move {
            let mut conns = Vec::new();
            for _ in 0..4 {
                conns.push(Arc::new(Mutex::new(Http::connect(&post.addr).await)));
            }
            let mut tick =
                tokio::time::interval(Duration::from_nanos(1_000_000_000 / LATENCY_RATE));
            for i in 0..total {
                tick.tick().await;
                let title = format!("lat-{i}");
                let conn = conns[usize::try_from(i).unwrap() % conns.len()].clone();
                let (sent, post) = (sent.clone(), post.clone());
                tokio::spawn(async move {
                    let mut conn = conn.lock().await;
                    sent.lock().await.insert(title.clone(), Instant::now());
                    conn.post_notification(&post, &title).await;
                });
            }
        })
    };
    let mut latencies = Vec::new();
    while latencies.len() < usize::try_from(total).unwrap() {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("channel closed")
        };
        let received = Instant::now();
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        let notification = &frame["notification"];
        let title = notification["payload"]["visualContent"]["title"]
            .as_str()
            .or_else(|| notification["groupName"].as_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(at) = sent.lock().await.remove(&title) {
            latencies.push(received - at);
        }
    }
    poster.await.unwrap();
    latencies
}

/// Fan-out: every channel of `listen` open, [`POSTERS`] posters posting as `posts`
/// (round robin) for `duration`. Returns the change frames received on all channels,
/// the posts answered `201`, and the time it took (until every post's changes arrived).
pub async fn fanout(listen: &[Listen], posts: &[Post], duration: Duration) -> (u64, u64, Duration) {
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for one in listen {
        let mut socket = open_channel(one).await;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.as_str().contains("\"change\"")
                {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    let (posted, _) = throughput(posts, duration).await;
    // Each post reaches its user's devices: wait until every delivery is in (bounded).
    let per_post = listen.len() as u64 / posts.len().max(1) as u64;
    let expected = posted * per_post;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    for reader in readers {
        reader.abort();
    }
    (received.load(Ordering::Relaxed), posted, elapsed)
}

/// A minimal HTTP/1.1 keep-alive client: the cheapest possible load generator.
pub struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    /// Posts `post`'s notification named `title` and checks it was stored (201).
    pub async fn post_notification(&mut self, post: &Post, title: &str) {
        let headers = [
            ("Authorization", post.auth.as_str()),
            ("X-UNS-ID", post.unsid.as_str()),
        ];
        let path = "/beta/me/notifications";
        let (status, _) = self
            .request(
                "POST",
                path,
                &headers,
                "application/json",
                &post.body(title),
            )
            .await;
        assert_eq!(status, 201);
    }

    pub async fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.write_all(head.as_bytes()).await.unwrap();
        self.buf.clear();
        let header_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..header_end]).into_owned();
        let status: u16 = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = &self.buf[header_end..header_end + length];
        (status, serde_json::from_slice(body).unwrap_or(Value::Null))
    }
}
