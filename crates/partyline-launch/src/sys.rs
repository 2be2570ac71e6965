//! The crate's only unsafe code: thin libc calls that neither std nor tokio
//! offers.

use std::io;
use std::os::fd::RawFd;

use tokio::process::Command;

/// Makes the kernel SIGKILL the program as soon as partyline dies, however it
/// dies (`kill_on_drop` covers only orderly exits; SIGKILL or a crash skip
/// it). A program left behind would keep its ports and, for MPyC, hang the
/// other parties.
///
/// The kernel ties the signal to the thread that spawns the child, not to the
/// process: spawn from a thread that lives as long as the program, such as a
/// tokio worker or the main thread, not from a short-lived blocking thread.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are, and the
    // closure neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            // prctl is variadic and the kernel reads every argument as an
            // unsigned long: pass them at that width.
            let signal = libc::SIGKILL as libc::c_ulong;
            let unused: libc::c_ulong = 0;
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal, unused, unused, unused) == -1 {
                return Err(io::Error::last_os_error());
            }
            // partyline may have died between fork and prctl, in which case
            // no signal will ever come: the child was reparented already.
            if std::os::unix::process::parent_id() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Lets the child keep descriptor `fd` open across exec.
///
/// std opens every descriptor close-on-exec. Clearing the flag in the forked
/// child, just before exec, touches only the child's own descriptor table:
/// partyline's copy stays close-on-exec, so no other program partyline
/// starts inherits the socket.
#[allow(unsafe_code)]
pub(crate) fn keep_open_across_exec(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and calls only
    // fcntl, which is async-signal-safe; it neither allocates nor locks.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags == -1 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Elsewhere only `kill_on_drop` protects against a program left behind.
#[cfg(not(target_os = "linux"))]
pub(crate) fn kill_with_parent(_cmd: &mut Command) {}

/// Whether a process `pid` exists (ours or another user's).
#[allow(unsafe_code)]
pub(crate) fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks; it takes plain integers.
    let answered = unsafe { libc::kill(pid, 0) };
    answered == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends SIGTERM to `pid`, which must be a child that has not been reaped yet
/// (so that the pid cannot have been reused by an unrelated process).
#[allow(unsafe_code)]
pub(crate) fn send_sigterm(pid: u32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time (user plus system) used so far by this process (`own`) and by
/// its children that have exited and been waited for (`children`, with
/// their own children), as `getrusage(2)` counts it.
#[allow(unsafe_code)]
pub(crate) fn cpu_times() -> (std::time::Duration, std::time::Duration) {
    let usage = |who: libc::c_int| {
        // SAFETY: getrusage fills the zeroed struct it is given and keeps no pointer.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &raw mut usage) } != 0 {
            return std::time::Duration::ZERO;
        }
        let time = |t: libc::timeval| {
            std::time::Duration::from_secs(t.tv_sec.max(0) as u64)
                + std::time::Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_CHILDREN))
}
