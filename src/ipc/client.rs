//! The JSON-RPC client: one connection, one request at a time, plus the notifications
//! a server pushes (a `watch`), read with [`Client::next_notification`].

use std::collections::VecDeque;
use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::codec::{self, Request, Response, RpcError};
use super::lines::{LineRead, LineReader};
use super::transport;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("nothing is listening on {path}: {source}")]
    NotRunning {
        /// The socket path.
        path: String,
        /// The connect error.
        source: std::io::Error,
    },
    /// The connection failed mid-call.
    #[error("IPC connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered something that is not a JSON-RPC response.
    #[error("the server sent an invalid response: {0}")]
    Protocol(String),
    /// The server answered with an error (its message is the whole story).
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

/// A connected client.
pub struct Client {
    reader: LineReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    next_id: u64,
    /// Notifications that arrived while a response was awaited.
    pushed: VecDeque<Request>,
}

impl Client {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = transport::connect(path).await.map_err(|source| {
            if transport::is_not_running(&source) {
                ClientError::NotRunning {
                    path: path.display().to_string(),
                    source,
                }
            } else {
                ClientError::Io(source)
            }
        })?;
        let (read, write) = tokio::io::split(stream);
        Ok(Self {
            reader: LineReader::new(Box::new(read), codec::MAX_LINE_BYTES),
            writer: Box::new(write),
            next_id: 1,
            pushed: VecDeque::new(),
        })
    }

    /// Calls `method` with `params` and waits for its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = serde_json::to_vec(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        bytes.push(b'\n');
        if let Err(e) = self.writer.write_all(&bytes).await {
            // A server that refused this connection said why before closing.
            return Err(self.refusal().await.unwrap_or(ClientError::Io(e)));
        }
        let response = loop {
            let value = self.read_message().await?;
            if value.get("method").is_some() && value.get("id").is_none_or(Value::is_null) {
                self.pushed.push_back(notification(value)?);
                continue;
            }
            break serde_json::from_value::<Response>(value)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
        };
        if response.id.is_null() && response.error.is_some() {
            return Err(response.into_result().err().map_or_else(
                || ClientError::Protocol("an empty error".to_owned()),
                ClientError::Rpc,
            ));
        }
        if response.id != id {
            return Err(ClientError::Protocol(format!(
                "response for id {}",
                response.id
            )));
        }
        Ok(response.into_result()?)
    }

    /// The next notification the server pushes (`None` when it closed the connection).
    pub async fn next_notification(&mut self) -> Result<Option<Request>, ClientError> {
        if let Some(pushed) = self.pushed.pop_front() {
            return Ok(Some(pushed));
        }
        match self.read_message().await {
            Ok(value) => Ok(Some(notification(value)?)),
            Err(ClientError::Protocol(reason)) if reason == CLOSED => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The error a closing server sent, if it sent one.
    async fn refusal(&mut self) -> Option<ClientError> {
        let response: Response = serde_json::from_value(self.read_message().await.ok()?).ok()?;
        response.into_result().err().map(ClientError::Rpc)
    }

    /// Reads one line as JSON.
    async fn read_message(&mut self) -> Result<Value, ClientError> {
        let line = match self.reader.next().await? {
            LineRead::Line(line) => line,
            LineRead::TooLong => return Err(ClientError::Protocol("message too long".to_owned())),
            LineRead::NotUtf8 => {
                return Err(ClientError::Protocol("a line not in UTF-8".to_owned()));
            }
            LineRead::Eof => return Err(ClientError::Protocol(CLOSED.to_owned())),
        };
        serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

/// Why reading failed when the server closed the connection.
const CLOSED: &str = "the server closed the connection";

fn notification(value: Value) -> Result<Request, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))
}
