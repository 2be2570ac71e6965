//! Everything partyline knows about MPyC, in one place: the pinned release,
//! its command-line flags, its threshold rule, its log lines, and
//! partyline's own example programs.
//!
//! partyline runs MPyC programs unmodified and talks to MPyC only through its
//! command line and its log. The launcher, the lab and `partyline bench` all
//! build MPyC's flags and read its log here, so that a new MPyC release is
//! adapted to in this file (and in `versions.env`) alone.
//!
//! The pinned versions come from `versions.env` at the repository root, which
//! the shell scripts source too; it is read at compile time, so a missing key
//! is a build error, not a runtime surprise.

use std::net::SocketAddr;
use std::time::Duration;

/// The repository's version pins (`KEY=value` lines).
const VERSIONS_ENV: &str = include_str!("../../../versions.env");

/// The MPyC release partyline's flags and forwarding are verified against.
pub const VERSION: &str = pinned("MPYC_VERSION");

/// The `mpyc-web` release whose wheel carries MPyC's demo programs (they are
/// not in the `mpyc` wheel).
pub const WEB_VERSION: &str = pinned("MPYC_WEB_VERSION");

/// An optional package MPyC uses when it can import it, and works without
/// (more slowly, or without its array programs).
#[derive(Debug, PartialEq, Eq)]
pub struct Extra {
    /// The package's import and PyPI name.
    pub name: &'static str,
    /// The release partyline's managed Python installs.
    pub version: &'static str,
    /// What MPyC loses without it, for the hint to `--python` users.
    pub without: &'static str,
    /// The environment variable that, set to `1`, tells MPyC not to look for
    /// it (and so not to log its own "Install package" hint).
    pub off_env: &'static str,
}

/// gmpy2: MPyC's big integers in GMP instead of pure Python.
pub const GMPY2: Extra = Extra {
    name: "gmpy2",
    version: pinned("GMPY2_VERSION"),
    without: "big integers in pure Python (slower)",
    off_env: "MPYC_NOGMPY",
};

/// numpy: MPyC's secure arrays, which its `np_*` demos need.
pub const NUMPY: Extra = Extra {
    name: "numpy",
    version: pinned("NUMPY_VERSION"),
    without: "no array programs such as np_cnnmnist",
    off_env: "MPYC_NONUMPY",
};

/// MPyC's optional packages, installed beside it in the managed Python.
pub const EXTRAS: [Extra; 2] = [GMPY2, NUMPY];

/// From this many parties on, benchmarks pass `-T 1`: MPyC's default
/// threshold t = (m−1)/2 makes its PRSS set-up grow as C(m, t) (210 keys at
/// m = 10), so a 10-party run would not fit any time budget.
pub const LOW_THRESHOLD_FROM: usize = 8;

/// The flag that makes MPyC use TLS between parties, with certificates in
/// [`SSL_DIR`]'s layout.
pub const SSL_FLAG: &str = "--ssl";

/// pip's requirement for the pinned release, e.g. `mpyc==0.11`.
pub fn requirement() -> String {
    format!("mpyc=={VERSION}")
}

/// pip's requirements for the managed Python: MPyC and its [`EXTRAS`], each
/// at its pinned release.
pub fn managed_requirements() -> Vec<String> {
    std::iter::once(requirement())
        .chain(EXTRAS.iter().map(Extra::requirement))
        .collect()
}

impl Extra {
    /// pip's requirement, e.g. `numpy==2.4.6`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// Whether `version` (from `mpyc.__version__`) is the pinned release or a
/// patch release of it.
pub fn is_pinned_release(version: &str) -> bool {
    version
        .strip_prefix(VERSION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// A Python program whose last stdout line is the MPyC version it imports,
/// then the installed version of each of [`EXTRAS`] in order: `-` for one
/// that cannot be imported, `?` for one without package metadata. Finding
/// the extras without importing them keeps the check quick (numpy alone
/// takes 0.1 s to import).
pub fn print_versions() -> String {
    let names: Vec<String> = EXTRAS.iter().map(|e| format!("'{}'", e.name)).collect();
    let names = names.join(", ");
    format!(
        r#"import importlib.metadata as m, importlib.util as u, mpyc
def version(name):
    if u.find_spec(name) is None:
        return '-'
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return '?'
print(mpyc.__version__, *map(version, [{names}]))
"#
    )
}

/// MPyC's connection flags for party `index` of `addrs.len()` parties:
/// `-M m -I index -P host:port …`, one `-P` per party in index order, where
/// party `index`'s own entry is the port it listens on.
///
/// MPyC picks these out of `sys.argv` wherever they are and leaves the
/// program's own arguments alone, so they can follow the user's arguments.
pub fn connection_flags(addrs: &[SocketAddr], index: usize) -> Vec<String> {
    let mut flags = vec![
        "-M".to_owned(),
        addrs.len().to_string(),
        "-I".to_owned(),
        index.to_string(),
    ];
    for addr in addrs {
        // MPyC splits `-P` at the last colon and hands the host to asyncio
        // as is, so an IPv6 address must go without brackets.
        flags.push("-P".to_owned());
        flags.push(format!("{}:{}", addr.ip(), addr.port()));
    }
    flags
}

/// The threshold MPyC uses for `parties` parties when none is passed:
/// t = (m−1)/2, the most corrupted parties an honest majority tolerates.
pub fn default_threshold(parties: usize) -> usize {
    parties.saturating_sub(1) / 2
}

/// The threshold flags a benchmark with `parties` parties passes to every
/// party: none below [`LOW_THRESHOLD_FROM`] (MPyC's default), `-T 1` from
/// there on. Every solution of one comparison gets the same flags.
pub fn benchmark_threshold_flags(parties: usize) -> Vec<String> {
    if parties >= LOW_THRESHOLD_FROM {
        threshold_flags(1)
    } else {
        Vec::new()
    }
}

/// `-T t`: MPyC's threshold flag (t < m/2).
pub fn threshold_flags(threshold: usize) -> Vec<String> {
    vec!["-T".to_owned(), threshold.to_string()]
}

/// Where `--ssl` makes a party look for its key, its certificate and the CA's
/// certificate, relative to its working directory.
pub const SSL_DIR: &str = ".config";

/// Party `index`'s key file name in [`SSL_DIR`].
pub fn ssl_key_file(index: usize) -> String {
    format!("party_{index}.key")
}

/// Party `index`'s certificate file name in [`SSL_DIR`].
pub fn ssl_cert_file(index: usize) -> String {
    format!("party_{index}.crt")
}

/// The CA certificate's file name in [`SSL_DIR`].
pub const SSL_CA_FILE: &str = "mpyc_ca.crt";

/// The host name a dialling party checks party `index`'s certificate
/// against: its subjectAltName (and common name) must be `DNS:` this.
pub fn ssl_subject(index: usize) -> String {
    format!("MPyC party {index}")
}

/// partyline's own MPyC programs (`examples/` in the repository), built in so
/// that the demo and the lab run the same code from an installed executable:
/// (file name, source).
pub const EXAMPLES: [(&str, &str); 4] = [
    (
        "secretsanta.py",
        include_str!("../../../examples/secretsanta.py"),
    ),
    (
        "securesum.py",
        include_str!("../../../examples/securesum.py"),
    ),
    ("bulk.py", include_str!("../../../examples/bulk.py")),
    ("sort.py", include_str!("../../../examples/sort.py")),
];

/// The source of example `file_name` (e.g. `sort.py`), if there is one.
pub fn example(file_name: &str) -> Option<&'static str> {
    EXAMPLES
        .iter()
        .find(|(name, _)| *name == file_name)
        .map(|(_, source)| *source)
}

/// MPyC's last log line, `… Stop MPyC -- elapsed time: H:MM:SS.ffffff|bytes
/// sent: N`, if `log` (a party's stdout) has one.
fn stop_line(log: &str) -> Option<&str> {
    log.lines().rev().find(|line| line.contains("Stop MPyC"))
}

/// MPyC's own run time, from start to shutdown, as its last log line says.
pub fn elapsed(log: &str) -> Option<Duration> {
    let line = stop_line(log)?;
    let field = line.split("elapsed time: ").nth(1)?;
    parse_timedelta(field.split('|').next()?.trim())
}

/// The payload bytes this party sent, as MPyC's last log line counts them.
pub fn bytes_sent(log: &str) -> Option<u64> {
    let line = stop_line(log)?;
    line.split("bytes sent: ").nth(1)?.trim().parse().ok()
}

/// Python's `str(datetime.timedelta)`: `H:MM:SS[.ffffff]`, after
/// `N day(s), ` for a day or more.
fn parse_timedelta(text: &str) -> Option<Duration> {
    let (days, clock) = match text.split_once(", ") {
        Some((days, clock)) => (days.split(' ').next()?.parse::<f64>().ok()?, clock),
        None => (0.0, text),
    };
    let mut parts = clock.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Duration::try_from_secs_f64(((days * 24.0 + hours) * 60.0 + minutes) * 60.0 + seconds).ok()
}

/// The value of `key` in versions.env; a missing or empty key fails the build.
const fn pinned(key: &str) -> &'static str {
    match env_value(VERSIONS_ENV, key) {
        Some(value) if !value.is_empty() => value,
        _ => panic!("versions.env at the repository root lacks a version partyline needs"),
    }
}

/// The value of the first `key=value` line of `text`, trimmed; `#` lines
/// are comments. A `const fn`, so that the pins are constants.
const fn env_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let bytes = text.as_bytes();
    let key = key.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\n' {
            end += 1;
        }
        let value_start = start + key.len() + 1;
        if value_start <= end && bytes[value_start - 1] == b'=' && starts_with_at(bytes, start, key)
        {
            let (_, rest) = bytes.split_at(value_start);
            let (value, _) = rest.split_at(end - value_start);
            return match std::str::from_utf8(value.trim_ascii()) {
                Ok(value) => Some(value),
                Err(_) => None,
            };
        }
        start = end + 1;
    }
    None
}

const fn starts_with_at(bytes: &[u8], at: usize, prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() {
        if at + i >= bytes.len() || bytes[at + i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_come_from_versions_env() {
        let lines: Vec<&str> = VERSIONS_ENV.lines().collect();
        assert!(lines.contains(&format!("MPYC_VERSION={VERSION}").as_str()));
        assert!(lines.contains(&format!("MPYC_WEB_VERSION={WEB_VERSION}").as_str()));
        assert_eq!(requirement(), format!("mpyc=={VERSION}"));
        for (extra, key) in EXTRAS.iter().zip(["GMPY2_VERSION", "NUMPY_VERSION"]) {
            assert!(lines.contains(&format!("{key}={}", extra.version).as_str()));
        }
        assert_eq!(
            managed_requirements(),
            [
                requirement(),
                format!("gmpy2=={}", EXTRAS[0].version),
                format!("numpy=={}", EXTRAS[1].version)
            ]
        );
        let text = "# comment\nA=1\nAB = x\nMPYC_VERSION=0.12\r\nEMPTY=\n";
        assert_eq!(env_value(text, "MPYC_VERSION"), Some("0.12"));
        assert_eq!(env_value(text, "A"), Some("1"));
        assert_eq!(env_value(text, "EMPTY"), Some(""));
        assert_eq!(
            env_value(text, "AB"),
            None,
            "a key is followed by = at once"
        );
        assert_eq!(env_value(text, "MPYC"), None);
        assert_eq!(env_value("", "A"), None);
    }

    #[test]
    fn accepts_only_the_pinned_release_and_its_patch_releases() {
        assert!(is_pinned_release(VERSION));
        assert!(is_pinned_release(&format!("{VERSION}.1")));
        assert!(!is_pinned_release(&format!("{VERSION}0")));
        assert!(!is_pinned_release("0.10"));
        assert!(!is_pinned_release(""));
    }

    #[test]
    fn connection_flags_list_every_party_in_order() {
        let addrs: Vec<SocketAddr> = ["10.0.0.1:7000", "10.0.0.2:7000", "[::1]:7002"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            connection_flags(&addrs, 1).join(" "),
            "-M 3 -I 1 -P 10.0.0.1:7000 -P 10.0.0.2:7000 -P ::1:7002"
        );
    }

    #[test]
    fn threshold_rule() {
        assert_eq!(default_threshold(1), 0);
        assert_eq!(default_threshold(3), 1);
        assert_eq!(default_threshold(4), 1);
        assert_eq!(default_threshold(10), 4);
        assert!(benchmark_threshold_flags(LOW_THRESHOLD_FROM - 1).is_empty());
        assert_eq!(benchmark_threshold_flags(LOW_THRESHOLD_FROM), ["-T", "1"]);
    }

    #[test]
    fn reads_the_stop_line() {
        let log = "2026-11-25 21:46:09,100 Start MPyC runtime v0.11\n\
                   2026-11-25 21:46:10,723 Stop MPyC -- elapsed time: 0:01:02.500000|bytes sent: 11596\n";
        assert_eq!(elapsed(log), Some(Duration::from_secs_f64(62.5)));
        assert_eq!(bytes_sent(log), Some(11_596));
        assert_eq!(elapsed("no such line"), None);
        assert_eq!(bytes_sent("no such line"), None);
        let whole_seconds = "x Stop MPyC -- elapsed time: 0:00:02|bytes sent: 0";
        assert_eq!(elapsed(whole_seconds), Some(Duration::from_secs(2)));
        let long = "x Stop MPyC -- elapsed time: 1 day, 1:00:00.25|bytes sent: 7";
        assert_eq!(elapsed(long), Some(Duration::from_secs_f64(90_000.25)));
    }
}
