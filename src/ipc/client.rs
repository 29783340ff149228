//! The JSON-RPC client: one connection, one request at a time.

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::codec::{self, LineRead, Request, Response, RpcError};

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
    /// The server answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
}

/// A connected client.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    line: Vec<u8>,
}

impl Client {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::NotRunning {
                path: path.display().to_string(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer,
            next_id: 1,
            line: Vec::new(),
        })
    }

    /// Calls `method` with `params` and waits for its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = serde_json::to_vec(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
        match codec::read_line(&mut self.reader, &mut self.line, codec::MAX_LINE_BYTES).await? {
            LineRead::Line => {}
            LineRead::TooLong => return Err(ClientError::Protocol("response too long".to_owned())),
            LineRead::Eof => return Err(ClientError::Protocol("connection closed".to_owned())),
        }
        let response: Response =
            serde_json::from_slice(&self.line).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if response.id != id {
            return Err(ClientError::Protocol(format!(
                "response for id {}",
                response.id
            )));
        }
        Ok(response.into_result()?)
    }
}
