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

/// The header of a TCP stream to another of the party's ports than its
/// first (`join --ports N`), followed by the port's offset, a `u16` little
/// endian. Not a [`StreamKind`]: [`read_header`], which MPyC-only parties use,
/// treats it as unknown; [`read_tcp_header`] reads it.
pub const TCP_TO_PORT: u8 = 3;

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

/// Opens a stream that carries one TCP connection to the peer's port at
/// `offset` from its first; offset 0 is the plain [`open`].
pub async fn open_to_port(
    conn: &Connection,
    offset: u16,
) -> Result<(SendStream, RecvStream), StreamError> {
    if offset == 0 {
        return open(conn).await;
    }
    let (mut send, recv) = conn.open_bi().await?;
    let [low, high] = offset.to_le_bytes();
    send.write_all(&[TCP_TO_PORT, low, high]).await?;
    Ok((send, recv))
}

/// Reads the header of a stream the peer opened, which must carry a TCP
/// connection, and returns the offset of the port it is for.
pub async fn read_tcp_header(recv: &mut RecvStream) -> Result<u16, StreamError> {
    let mut header = [0u8; 1];
    recv.read_exact(&mut header).await?;
    match header[0] {
        1 => Ok(0),
        2 => Err(StreamError::WrongKind(StreamKind::Ready)),
        TCP_TO_PORT => {
            let mut offset = [0u8; 2];
            recv.read_exact(&mut offset).await?;
            Ok(u16::from_le_bytes(offset))
        }
        other => Err(StreamError::UnknownKind(other)),
    }
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
