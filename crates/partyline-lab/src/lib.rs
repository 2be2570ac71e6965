//! partyline's lab: an emulated Internet on one machine, and the MPC
//! benchmark matrix that runs every connection solution on it.
//!
//! Hosts are Linux network namespaces joined by an "internet" router
//! namespace; parties sit on public addresses or behind real iptables NATs
//! (cone, symmetric, carrier-grade, UDP-blocked). Latency between regions
//! comes from a user-space NFQUEUE delay stage (this kernel has no netem),
//! loss from iptables' statistic match, rate from tc token buckets. Every
//! run gets its own name prefix, and everything is removed at the end, also
//! after an error or Ctrl-C. All of it needs root, except the `loopback`
//! scenario ([`Scenario::loopback`]): every party a process on this machine,
//! nothing emulated, what `partyline bench` runs.
//!
//! # Layout
//! - [`topology`]: [`Lab`], building the namespaces, links and routes of a
//!   [`TopologySpec`] (or nothing, on loopback), and removing them when dropped.
//! - [`nat`]: [`NatKind`] and the iptables rules of each kind of router.
//! - [`delay`]: the delay stage (`partyline lab delay-stage`), reconfigured
//!   by SIGHUP for a fault's jitter.
//! - [`shaping`]: loss rules and rate limits.
//! - [`scenario`]: [`Scenario`]s (regions and round-trip times, faults),
//!   built in or from TOML, and the loopback one.
//! - [`fault`]: faults scripted at a time in every run (link down, address
//!   change, NAT reset, network switch, relay restart, loss and reordering) and the
//!   [`fault::Schedule`] that applies and undoes them.
//! - [`workload`]: the MPC programs and their sizes; fetching MPyC's demos;
//!   the CNN demo's data (shipped in `data/cnn`, one weight file generated).
//! - [`solutions`]: tcp, tcp-ssl, partyline, partyline-relay, wireguard.
//! - [`runner`]: the matrix of [`runner::Case`]s with its progress bar.
//! - [`report`]: CSV rows, the markdown summary and the one [`report::median`];
//!   [`plot`]: PNG and SVG charts.
//! - [`cleanup`]: removing a lab's leftovers by prefix (`partyline lab clean`).
//! - [`interrupt`]: Ctrl-C and SIGTERM become an error that unwinds to the
//!   drop guards.
//! - [`process`], [`shell`]: processes and tools inside namespaces; `sys`:
//!   the few libc calls std lacks (the crate's only unsafe code).
#![deny(unsafe_code)]

pub mod cleanup;
pub mod delay;
pub mod error;
pub mod fault;
pub mod interrupt;
pub mod nat;
pub mod plot;
pub mod process;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shaping;
pub mod shell;
pub mod solutions;
mod sys;
pub mod topology;
pub mod workload;

pub use error::{LabError, Result};
pub use nat::NatKind;
pub use scenario::Scenario;
pub use solutions::Solution;
pub use topology::{Lab, TopologySpec};
pub use workload::{Demo, Size};
