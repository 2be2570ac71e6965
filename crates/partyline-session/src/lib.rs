//! The party's side of the coordinator: create a session, announce ourselves,
//! wait for everyone, and verify what the coordinator hands back.
//!
//! # Layout
//! - [`tls`]: trusting our self-hosted server by certificate pin.
#![forbid(unsafe_code)]

pub mod tls;
