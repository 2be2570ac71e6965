//! MPyC's own TCP between the parties' public addresses (the reference
//! study's "Internet Protocol" solution), plain or with `--ssl`.
//!
//! For `--ssl` the lab plays each party's administrator: it makes a P-256
//! CA and per-party certificates with openssl, as MPyC expects them
//! (`.config/party_{i}.crt/.key` and `.config/mpyc_ca.crt` in the party's
//! working directory, subject and subjectAltName `MPyC party {i}`). In real
//! life the CA key holder must hand every party its certificate over a
//! trusted channel, which this time does not include.
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use partyline_launch::mpyc;

use super::{Context, Outcome, Solution, finish};
use crate::error::{LabError, Result};
use crate::process::NsProcess;
use crate::shell;

pub fn run(ctx: &Context, ssl: bool) -> Result<Outcome> {
    ctx.require_public(if ssl { Solution::TcpSsl } else { Solution::Tcp })?;
    let n = ctx.parties();
    let setup_started = Instant::now();
    for i in 0..n {
        ctx.workload.setup_dir(&ctx.party_dir(i))?;
    }
    let setup = if ssl {
        make_certificates(ctx, n)?;
        Some(setup_started.elapsed())
    } else {
        None
    };
    let addrs: Vec<Ipv4Addr> = ctx.lab.parties.iter().map(|p| p.ip).collect();
    run_mpyc(ctx, &addrs, ssl, setup)
}

/// Starts every party's MPyC directly (no partyline), connecting to `addrs`.
pub fn run_mpyc(
    ctx: &Context,
    addrs: &[Ipv4Addr],
    ssl: bool,
    setup: Option<Duration>,
) -> Result<Outcome> {
    let sockets: Vec<SocketAddr> = addrs
        .iter()
        .zip(&ctx.ports)
        .map(|(&ip, &port)| SocketAddr::new(ip.into(), port))
        .collect();
    let started = Instant::now();
    let mut parties = Vec::new();
    for (i, host) in ctx.lab.parties.iter().enumerate() {
        let mut args = ctx.program();
        args.extend(mpyc::connection_flags(&sockets, i));
        if ssl {
            args.push(mpyc::SSL_FLAG.into());
        }
        parties.push(NsProcess::spawn(
            &format!("party{i}"),
            host.ns.as_deref(),
            &ctx.party_dir(i),
            &ctx.workload.python,
            &args,
            &[],
        )?);
    }
    let mut outcome = finish(ctx, parties, started, None)?;
    outcome.setup = setup;
    outcome.paths = format!("tcp:{}", n_links(addrs.len()));
    Ok(outcome)
}

/// The number of party-to-party connections in a full mesh.
fn n_links(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

/// A CA in `dir/ca` and each party's certificate where MPyC's `--ssl` looks.
fn make_certificates(ctx: &Context, n: usize) -> Result<()> {
    let ca = ctx.dir.join("ca");
    std::fs::create_dir_all(&ca).map_err(LabError::io(&ca))?;
    let p = |path: &Path| path.to_string_lossy().into_owned();
    let (ca_key, ca_crt) = (ca.join("mpyc_ca.key"), ca.join(mpyc::SSL_CA_FILE));
    shell::run(
        "openssl",
        [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p(&ca_key),
            "-out",
            &p(&ca_crt),
            "-days",
            "2",
            "-subj",
            "/CN=MPyC lab CA",
        ],
    )?;
    for i in 0..n {
        let config = ctx.party_dir(i).join(mpyc::SSL_DIR);
        std::fs::create_dir_all(&config).map_err(LabError::io(&config))?;
        let name = mpyc::ssl_subject(i);
        let key = config.join(mpyc::ssl_key_file(i));
        let csr = ca.join(format!("party_{i}.csr"));
        let crt = config.join(mpyc::ssl_cert_file(i));
        let ext = ca.join(format!("party_{i}.ext"));
        std::fs::write(&ext, format!("subjectAltName=DNS:{name}\n")).map_err(LabError::io(&ext))?;
        shell::run(
            "openssl",
            [
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &p(&key),
                "-out",
                &p(&csr),
                "-subj",
                &format!("/CN={name}"),
            ],
        )?;
        shell::run(
            "openssl",
            [
                "x509",
                "-req",
                "-in",
                &p(&csr),
                "-CA",
                &p(&ca_crt),
                "-CAkey",
                &p(&ca_key),
                "-CAcreateserial",
                "-out",
                &p(&crt),
                "-days",
                "2",
                "-extfile",
                &p(&ext),
            ],
        )?;
        let copy = config.join(mpyc::SSL_CA_FILE);
        std::fs::copy(&ca_crt, &copy).map_err(LabError::io(&copy))?;
    }
    Ok(())
}
