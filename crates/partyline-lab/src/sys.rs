//! The crate's only unsafe code: thin libc calls that std does not offer.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::time::Duration;

/// Whether this process runs with effective user id 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The file descriptor of this process's NETLINK_NETFILTER socket.
///
/// The `nfq` crate keeps its socket's descriptor private, but the delay stage
/// must sleep on it with a timeout (until the next held packet is due). The
/// stage opens exactly one such socket, so it is found by asking every open
/// descriptor for its socket domain and protocol.
pub fn find_netfilter_socket() -> Option<RawFd> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|&fd| {
            sockopt_int(fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                && sockopt_int(fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
        })
}

fn sockopt_int(fd: RawFd, option: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len point to valid memory of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// Raises the socket's receive buffer (root may exceed rmem_max), so that a
/// burst of queued packets does not overflow it while the stage sleeps.
pub fn set_receive_buffer(fd: RawFd, bytes: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the value pointer and size match a c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits until `fd` is readable or `timeout` (None: forever) passes, with
/// nanosecond resolution (poll(2) only has milliseconds, too coarse for
/// sub-millisecond delays).
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> std::io::Result<()> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let spec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: one valid pollfd; spec_ptr is null or points to a live timespec.
    let rc = unsafe { libc::ppoll(&raw mut pollfd, 1, spec_ptr, std::ptr::null()) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Makes this process a real-time (SCHED_FIFO) one with the smallest timer
/// slack, so that on a busy machine the delay stage still releases packets
/// on time: it stands in for a wire, which no CPU load slows down. It
/// sleeps between packets, so it cannot starve the machine.
pub fn make_realtime() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: param is a valid sched_param; pid 0 means this thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
