//! The line framing JSON-RPC messages travel in: tokio-util's [`LinesCodec`], driven by
//! hand so that a bad line is answered instead of ending the connection.
//!
//! A line is at most a given length (the server's is [`super::codec::MAX_LINE_BYTES`]); a
//! longer one is read to its end, discarded and reported as [`LineRead::TooLong`], and one
//! that is not UTF-8 as [`LineRead::NotUtf8`]; the next line is then read as usual. (A
//! `FramedRead` over the same codec ends its stream after either error, which would cut
//! off a peer for one bad line.)

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

/// What reading one line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line, without its newline (nor a carriage return before it).
    Line(String),
    /// The line was longer than the limit and was skipped.
    TooLong,
    /// The line was not UTF-8 and was skipped.
    NotUtf8,
    /// The peer closed the connection.
    Eof,
}

/// How much room a read asks for at least (as a `BufReader`'s buffer).
const READ_ROOM: usize = 8 * 1024;

/// Reads lines of at most a given length from `R`.
pub struct LineReader<R> {
    reader: R,
    buf: BytesMut,
    codec: LinesCodec,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Lines of at most `max` bytes, newline excluded, from `reader`.
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            buf: BytesMut::new(),
            codec: LinesCodec::new_with_max_length(max),
            eof: false,
        }
    }

    /// The next line, or what was wrong with it, or the end.
    pub async fn next(&mut self) -> std::io::Result<LineRead> {
        loop {
            let decoded = if self.eof {
                self.codec.decode_eof(&mut self.buf)
            } else {
                self.codec.decode(&mut self.buf)
            };
            match decoded {
                Ok(Some(line)) => return Ok(LineRead::Line(line)),
                Ok(None) if self.eof => return Ok(LineRead::Eof),
                Ok(None) => {}
                Err(LinesCodecError::MaxLineLengthExceeded) => return Ok(LineRead::TooLong),
                // The codec's only `InvalidData` is a line that is not UTF-8; it has
                // consumed that line.
                Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Ok(LineRead::NotUtf8);
                }
                Err(LinesCodecError::Io(e)) => return Err(e),
            }
            self.buf.reserve(READ_ROOM);
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<LineRead> {
        // A reader that hands out a few bytes at a time, as a socket may.
        let reader = trickle(input);
        let mut lines = LineReader::new(reader, max);
        let mut read = Vec::new();
        loop {
            let line = lines.next().await.unwrap();
            let end = line == LineRead::Eof;
            read.push(line);
            if end {
                return read;
            }
        }
    }

    fn trickle(input: &[u8]) -> impl AsyncRead + Unpin {
        let (mut near, far) = tokio::io::duplex(3);
        let input = input.to_vec();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = near.write_all(&input).await;
        });
        far
    }

    #[tokio::test]
    async fn long_lines_are_skipped_and_reading_goes_on() {
        let input = format!("{}\nshort\n{}", "x".repeat(50), "y".repeat(11));
        assert_eq!(
            lines(input.as_bytes(), 10).await,
            [
                LineRead::TooLong,
                LineRead::Line("short".to_owned()),
                LineRead::TooLong,
                LineRead::Eof
            ]
        );
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_skipped_and_reading_goes_on() {
        let read = lines(b"{\"a\":1}\r\n\xff\xfe\nlast", 64).await;
        assert_eq!(
            read,
            [
                LineRead::Line("{\"a\":1}".to_owned()),
                LineRead::NotUtf8,
                LineRead::Line("last".to_owned()),
                LineRead::Eof
            ]
        );
    }
}
