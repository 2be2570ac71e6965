//! The party's MPyC program is reachable only through the loopback socket
//! partyline bound and handed to it, never on another interface or on IPv6.
//!
//! A real MPyC 0.11 party (party 1 of 2, whose peer never connects, so it
//! keeps listening) runs inside a network namespace this test makes for
//! itself, with a veth pair whose one end holds an IPv4 and an IPv6 address. The
//! namespace belongs to the test's own thread and its child processes, so the
//! kernel removes it, interface and all, when they end. Needs root (CI is).

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use partyline_launch::{
    LISTEN_FD_ENV, ProgramListener, ProgramSpec, Python, PythonSource, RunningProgram,
    ensure_python,
};

/// Addresses of this namespace's veth interface: not loopback.
const DUMMY_V4: &str = "10.213.0.1";
const DUMMY_V6: &str = "fd00:5ea1::1";
/// How long MPyC gets to start and accept the probe connection.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The smallest MPyC party: start the runtime, which listens for party 0.
const PARTY: &str = "from mpyc.runtime import mpc\nmpc.run(mpc.start())\n";

#[test]
fn mpyc_listens_only_on_the_loopback_socket_partyline_handed_it() {
    let python = managed_python();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("party.py"), PARTY).unwrap();
    let workdir = dir.path().to_owned();
    // Namespaces belong to threads: this one, its sockets and its children
    // live in the test's namespace; the rest of the test process does not.
    std::thread::spawn(move || {
        enter_new_network_namespace();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(check_party(python, workdir))
    })
    .join()
    .unwrap();
}

/// Party 1 of 2 running `program` in `workdir` on the handed `listener`.
/// Party 0's entry is never used: party 1 only listens.
fn party_one(
    program: &str,
    mpyc_flags: bool,
    python: impl Into<Python>,
    workdir: PathBuf,
    listener: &ProgramListener,
) -> ProgramSpec {
    ProgramSpec {
        program: vec![program.into()],
        mpyc_flags,
        parties: 2,
        index: 1,
        addrs: vec!["127.0.0.1:9".parse().unwrap(), listener.addr()],
        python: Some(python.into()),
        workdir: Some(workdir),
        listener: Some(listener.clone()),
    }
}

async fn check_party(python: PathBuf, workdir: PathBuf) {
    let listener = ProgramListener::bind().unwrap();
    let port = listener.addr().port();
    let spec = party_one("party.py", true, python, workdir, &listener);
    let mut program = RunningProgram::spawn(&spec).unwrap();
    let pid = program.id().unwrap();

    // (ii) 127.0.0.1:port is served, by the program itself: the connection
    // is accepted by the MPyC process, not only queued by the kernel.
    let probe = std::net::TcpStream::connect(listener.addr()).unwrap();
    wait_until_accepted_by(pid, probe.local_addr().unwrap().port(), port);

    // (i) MPyC is listening now; any other address of this host is refused.
    for ip in [DUMMY_V4, DUMMY_V6, "::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        let refused = tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await;
        assert_eq!(
            refused.as_ref().map_err(std::io::Error::kind).err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{ip} port {port} is reachable: {refused:?}"
        );
    }

    // (iii) The only listening socket on that port is the one partyline
    // reserved, on 127.0.0.1, and the program holds it.
    let listening = listening_sockets(pid, port);
    assert_eq!(
        listening.iter().map(|(addr, _)| *addr).collect::<Vec<_>>(),
        [listener.addr()],
        "listening on port {port}: {listening:?}"
    );
    assert!(socket_inodes_of(pid).contains(&listening[0].1));
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        env.split(|&b| b == 0)
            .any(|var| var.starts_with(format!("{LISTEN_FD_ENV}=").as_bytes())),
        "{LISTEN_FD_ENV} is not set for the program"
    );

    drop(probe);
    program.terminate(Duration::from_secs(5)).await.unwrap();
}

/// Another account on the machine connects to the program's loopback port
/// first and sends MPyC's party id 0, as if it were party 0: the hook closes
/// the connection before MPyC reads it, and the party keeps waiting for the
/// real party 0. Without the hook's check MPyC would take the connection as
/// party 0's and hold it open.
#[tokio::test]
async fn a_connection_from_another_user_never_reaches_the_program() {
    let python = ensure_python(PythonSource::Managed, &|status| eprintln!("{status}"))
        .await
        .expect("a Python with mpyc 0.11");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("party.py"), PARTY).unwrap();
    let listener = ProgramListener::bind().unwrap();
    let port = listener.addr().port();
    let spec = party_one("party.py", true, python, dir.path().to_owned(), &listener);
    let mut program = RunningProgram::spawn(&spec).unwrap();
    let pid = program.id().unwrap();
    // MPyC is serving once it accepts a connection of our own (same user).
    let own = std::net::TcpStream::connect(listener.addr()).unwrap();
    wait_until_accepted_by(pid, own.local_addr().unwrap().port(), port);
    drop(own);

    // `nobody` connects, claims party id 0 and waits for an answer; `cat`
    // returns before its timeout only if the other side closes the connection.
    let intruder = Command::new("bash")
        .args([
            "-c",
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/{port} && printf '\\0\\0' >&3 && timeout 10 cat <&3"
            ),
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("this test needs root to act as another user (CI runs it as root)");
    // Closed by the program's side: an end of stream, or a reset.
    let stderr = String::from_utf8_lossy(&intruder.stderr);
    assert!(
        intruder.status.code() == Some(0) || stderr.contains("Connection reset by peer"),
        "the connection of another user stayed open, or never opened ({}): {stderr}",
        intruder.status
    );
    // The party still waits for its real party 0: its port still serves.
    let again = std::net::TcpStream::connect(listener.addr()).unwrap();
    wait_until_accepted_by(pid, again.local_addr().unwrap().port(), port);
    drop(again);
    program.terminate(Duration::from_secs(5)).await.unwrap();
}

/// A plain asyncio program, as MPyC listens: `create_server` with no host.
/// It reports where it listens, whether the user's own `sitecustomize` ran,
/// and whether a process it starts inherits the socket.
const ASYNCIO_SERVER: &str = r#"
import asyncio, os, subprocess, sys
port = int(os.environ["PARTYLINE_ADDRS"].split(",")[1].rsplit(":", 1)[1])
out = open("result", "w")
async def main():
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, port=port)
    out.write(f"listening {sorted(s.getsockname()[:2] for s in server.sockets)}\n")
    server.close()
asyncio.run(main())
fd = os.environ["PARTYLINE_LISTEN_FD"]
child = subprocess.run([sys.executable, "-c", f"import os; os.fstat({fd})"], close_fds=False, capture_output=True)
out.write(f"child inherits the socket: {child.returncode == 0}\n")
out.write(f"user sitecustomize ran: {os.path.exists('user-sitecustomize-ran')}\n")
"#;

#[tokio::test]
async fn python_hook_serves_asyncio_on_the_handed_socket_and_runs_the_users_sitecustomize() {
    let python = ensure_python(PythonSource::Managed, &|status| eprintln!("{status}"))
        .await
        .expect("a Python with mpyc 0.11");
    let dir = tempfile::tempdir().unwrap();
    let user_path = dir.path().join("user-path");
    std::fs::create_dir(&user_path).unwrap();
    std::fs::write(
        user_path.join("sitecustomize.py"),
        "open('user-sitecustomize-ran', 'w').close()\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("server.py"), ASYNCIO_SERVER).unwrap();
    // The user's PYTHONPATH, as partyline finds it, comes after the hook.
    let wrapper = dir.path().join("python-with-user-path");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nPYTHONPATH=\"$PYTHONPATH:{}\" exec {} \"$@\"\n",
            user_path.display(),
            python.path.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let listener = ProgramListener::bind().unwrap();
    let spec = party_one(
        "server.py",
        false,
        wrapper,
        dir.path().to_owned(),
        &listener,
    );
    let mut program = RunningProgram::spawn(&spec).unwrap();
    assert!(program.wait().await.unwrap().success());
    let port = listener.addr().port();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("result")).unwrap(),
        format!(
            "listening [('127.0.0.1', {port})]\n\
             child inherits the socket: False\n\
             user sitecustomize ran: True\n"
        )
    );
}

fn managed_python() -> PathBuf {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(ensure_python(PythonSource::Managed, &|status| {
            eprintln!("{status}")
        }))
        .expect("a Python with mpyc 0.11")
        .path
}

/// Moves this thread into a fresh network namespace with loopback up and a
/// veth interface holding [`DUMMY_V4`] and [`DUMMY_V6`].
fn enter_new_network_namespace() {
    // SAFETY: unshare takes a flag and touches no memory of ours.
    let result = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        result,
        0,
        "this test needs root to make a network namespace (CI runs it as root): {}",
        std::io::Error::last_os_error()
    );
    for args in [
        &["link", "set", "lo", "up"][..],
        &[
            "link", "add", "pl-seal0", "type", "veth", "peer", "name", "pl-seal1",
        ],
        &["addr", "add", &format!("{DUMMY_V4}/24"), "dev", "pl-seal0"],
        &[
            "addr",
            "add",
            &format!("{DUMMY_V6}/64"),
            "dev",
            "pl-seal0",
            "nodad",
        ],
        &["link", "set", "pl-seal0", "up"],
        &["link", "set", "pl-seal1", "up"],
    ] {
        let out = Command::new("ip")
            .args(args)
            .output()
            .expect("iproute2's ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }
}

/// Waits until `pid` holds the server side of the loopback connection from
/// `client_port` to `port`.
fn wait_until_accepted_by(pid: u32, client_port: u16, port: u16) {
    let started = Instant::now();
    loop {
        let accepted = tcp_table(pid, "tcp").into_iter().find(|entry| {
            entry.local.port() == port && entry.remote.port() == client_port && entry.inode != 0
        });
        if let Some(entry) = accepted
            && socket_inodes_of(pid).contains(&entry.inode)
        {
            return;
        }
        assert!(
            started.elapsed() < START_LIMIT,
            "the program did not accept a connection on 127.0.0.1:{port} within {START_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The listening sockets on `port` in `pid`'s namespace, IPv4 and IPv6, with their inodes.
fn listening_sockets(pid: u32, port: u16) -> Vec<(SocketAddr, u64)> {
    const LISTEN: u8 = 0x0A;
    ["tcp", "tcp6"]
        .iter()
        .flat_map(|table| tcp_table(pid, table))
        .filter(|entry| entry.state == LISTEN && entry.local.port() == port)
        .map(|entry| (entry.local, entry.inode))
        .collect()
}

struct TcpEntry {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
}

/// `/proc/PID/net/tcp` or `tcp6`: the sockets of `pid`'s network namespace.
fn tcp_table(pid: u32, table: &str) -> Vec<TcpEntry> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            TcpEntry {
                local: proc_addr(fields[1]),
                remote: proc_addr(fields[2]),
                state: u8::from_str_radix(fields[3], 16).unwrap(),
                inode: fields[9].parse().unwrap(),
            }
        })
        .collect()
}

/// An address as /proc/net/tcp* writes it: the address as 32-bit words in
/// host byte order, in hex, then `:` and the port in hex.
fn proc_addr(text: &str) -> SocketAddr {
    let (addr, port) = text.split_once(':').unwrap();
    let words: Vec<[u8; 4]> = (0..addr.len() / 8)
        .map(|i| {
            u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16)
                .unwrap()
                .to_ne_bytes()
        })
        .collect();
    let ip = match words.len() {
        1 => IpAddr::from(words[0]),
        4 => IpAddr::from(<[u8; 16]>::try_from(words.concat()).unwrap()),
        n => panic!("{n} words in {text}"),
    };
    SocketAddr::new(ip, u16::from_str_radix(port, 16).unwrap())
}

/// The inodes of the sockets `pid` has open.
fn socket_inodes_of(pid: u32) -> Vec<u64> {
    let fds = Path::new("/proc").join(pid.to_string()).join("fd");
    std::fs::read_dir(fds)
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}
