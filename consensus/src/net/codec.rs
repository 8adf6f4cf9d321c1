//! Wire format of the point-to-point consensus protocol `/voltmesh/consensus/1`.
//!
//! One request-response exchange carries one message on its own Yamux stream:
//! - request: a 4-byte big-endian length `n`, then `n` opaque bytes, then the sender closes its
//!   write half;
//! - response: the single byte [`ACK`], written once the receiver has read the whole request.
//!   An explicit byte, not just end-of-stream, because a receiver that refuses a frame drops the
//!   stream, and a dropped stream may look like a clean close to the sender.
//!
//! The receiver refuses a length above its `max_message_size` before reading the body (nothing is
//! buffered), counts it, and fails only that stream: the connection and other streams go on.

use std::{io, sync::Arc};

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::stats::Counters;

/// The protocol name negotiated for consensus messages.
pub const CONSENSUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/voltmesh/consensus/1");

/// The acknowledgement byte.
pub(crate) const ACK: u8 = 0x06;

/// Length-prefixed frame codec with a receive limit.
#[derive(Debug, Clone)]
pub(crate) struct FrameCodec {
    max_message_size: usize,
    /// Shared with the event loop; the codec bumps `messages_oversized`.
    counters: Arc<Counters>,
}

impl FrameCodec {
    pub(crate) fn new(max_message_size: usize, counters: Arc<Counters>) -> Self {
        Self {
            max_message_size,
            counters,
        }
    }
}

/// Why an inbound frame was refused; travels inside an [`io::Error`] of kind `InvalidData`.
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes exceeds the {max}-byte limit")]
pub struct FrameTooLarge {
    /// Announced length.
    pub len: u64,
    /// Local limit.
    pub max: usize,
}

#[async_trait]
impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut prefix = [0u8; 4];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix);
        let fits = usize::try_from(len).is_ok_and(|l| l <= self.max_message_size);
        if !fits {
            Counters::inc(&self.counters.messages_oversized);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                FrameTooLarge {
                    len: u64::from(len),
                    max: self.max_message_size,
                },
            ));
        }
        // `fits` checked the conversion above.
        let mut body = vec![0u8; usize::try_from(len).unwrap_or(0)];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut ack = [0u8; 1];
        io.read_exact(&mut ack).await?;
        if ack[0] == ACK {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed consensus acknowledgement",
            ))
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let len = u32::try_from(req.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "consensus message longer than u32::MAX",
            )
        })?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&req).await?;
        io.flush().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, (): ()) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[ACK]).await?;
        io.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    use super::*;

    fn codec(max: usize) -> (FrameCodec, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (FrameCodec::new(max, counters.clone()), counters)
    }

    #[tokio::test]
    async fn frame_round_trips() {
        let (mut c, oversized) = codec(16);
        let mut wire = Vec::new();
        c.write_request(&CONSENSUS_PROTOCOL, &mut wire, b"hello".to_vec())
            .await
            .expect("w");
        assert_eq!(&wire[..4], &5u32.to_be_bytes());
        let got = c
            .read_request(&CONSENSUS_PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect("r");
        assert_eq!(got, b"hello");
        assert_eq!(oversized.messages_oversized.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_the_body_and_counted() {
        let (mut big, _) = codec(1024);
        let (mut small, oversized) = codec(8);
        let mut wire = Vec::new();
        big.write_request(&CONSENSUS_PROTOCOL, &mut wire, vec![7; 9])
            .await
            .expect("w");
        let err = small
            .read_request(&CONSENSUS_PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.get_ref().is_some_and(|e| e.is::<FrameTooLarge>()));
        assert_eq!(oversized.messages_oversized.load(Ordering::Relaxed), 1);
        // Exactly at the limit is fine.
        let mut wire = Vec::new();
        big.write_request(&CONSENSUS_PROTOCOL, &mut wire, vec![7; 8])
            .await
            .expect("w");
        let got = small
            .read_request(&CONSENSUS_PROTOCOL, &mut Cursor::new(wire))
            .await;
        assert_eq!(got.expect("fits").len(), 8);
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let (mut c, _) = codec(64);
        let mut wire = 10u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        let err = c
            .read_request(&CONSENSUS_PROTOCOL, &mut Cursor::new(wire))
            .await;
        assert_eq!(err.expect_err("short").kind(), io::ErrorKind::UnexpectedEof);
        let err = c
            .read_request(&CONSENSUS_PROTOCOL, &mut Cursor::new(vec![0u8, 1]))
            .await;
        assert_eq!(err.expect_err("short").kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn ack_is_one_explicit_byte() {
        let (mut c, _) = codec(8);
        let mut wire = Vec::new();
        c.write_response(&CONSENSUS_PROTOCOL, &mut wire, ())
            .await
            .expect("w");
        assert_eq!(wire, vec![ACK]);
        let mut io = Cursor::new(wire);
        c.read_response(&CONSENSUS_PROTOCOL, &mut io)
            .await
            .expect("ack");
        let closed = c
            .read_response(&CONSENSUS_PROTOCOL, &mut Cursor::new(Vec::new()))
            .await;
        assert_eq!(
            closed.expect_err("no ack").kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(c
            .read_response(&CONSENSUS_PROTOCOL, &mut Cursor::new(vec![0]))
            .await
            .is_err());
    }
}
