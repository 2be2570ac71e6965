//! The streams of a peer connection.
//!
//! Each TCP connection of the MPC program is one bidirectional QUIC stream,
//! opened by the side whose program dialled. Every stream starts with one
//! header byte that says what it carries, because a QUIC stream is only
//! announced to the peer once data is sent on it, and some protocols let the
//! accepting side speak first.
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};

/// What a stream carries, the first byte on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// One TCP connection of the program, both ways.
    Tcp = 1,
    /// Our "ready": we accepted the roster, and this is its digest (a uni
    /// stream, sent once, see [`crate::ready`]).
    Ready = 2,
}

/// The code a stream is reset or stopped with when one side gives up on it.
pub const RESET_CODE: VarInt = VarInt::from_u32(1);

/// Why a stream could not be opened or accepted.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Connection(#[from] iroh::endpoint::ConnectionError),
    #[error("{0}")]
    Write(#[from] iroh::endpoint::WriteError),
    #[error("{0}")]
    Read(#[from] iroh::endpoint::ReadExactError),
    #[error("it opened a stream of unknown kind {0}")]
    UnknownKind(u8),
    #[error("it opened a {0:?} stream where only TCP streams belong")]
    WrongKind(StreamKind),
}

/// Opens a stream that carries one TCP connection.
pub async fn open(conn: &Connection) -> Result<(SendStream, RecvStream), StreamError> {
    let (mut send, recv) = conn.open_bi().await?;
    send.write_all(&[StreamKind::Tcp as u8]).await?;
    Ok((send, recv))
}

/// Accepts the next stream the peer opens and checks its header.
pub async fn accept(conn: &Connection) -> Result<(SendStream, RecvStream), StreamError> {
    let (send, mut recv) = conn.accept_bi().await?;
    match read_header(&mut recv).await? {
        StreamKind::Tcp => Ok((send, recv)),
        other => Err(StreamError::WrongKind(other)),
    }
}

/// Reads and checks the header of a stream the peer opened.
pub async fn read_header(recv: &mut RecvStream) -> Result<StreamKind, StreamError> {
    let mut header = [0u8; 1];
    recv.read_exact(&mut header).await?;
    match header[0] {
        1 => Ok(StreamKind::Tcp),
        2 => Ok(StreamKind::Ready),
        other => Err(StreamError::UnknownKind(other)),
    }
}
