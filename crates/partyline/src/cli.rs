//! Command-line flags. Each `--help` is meant to teach the command.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};
use partyline_launch::mpyc;
use partyline_proto::transport::PeerTimeout;
use partyline_server::Quotas;
use partyline_session::link::ServerLink;

const LONG_ABOUT: &str = "\
partyline connects the parties of an MPC computation (MPyC or any TCP-based framework) over
end-to-end authenticated, encrypted peer-to-peer QUIC, through NATs, with a relay as fallback,
and starts the program with its networking already set.

Try it on one machine:
    partyline demo
A real session:
    partyline serve                                   (on a host every party can reach)
    partyline create --parties 3 --server 'https://HOST:7700#sha256=…'
    partyline join 'INVITE' -- secretsanta.py        (every party)
The same with a short code to say aloud instead of the invite:
    partyline create --parties 3 --code --server 'https://HOST:7700#sha256=…'
    partyline join 7-orbit-lamp-quiz --server 'https://HOST:7700#sha256=…' -- secretsanta.py";

const PEER_TIMEOUT_HELP: &str = "Seconds a silent peer is given before the session ends naming it \
(3 to 600). Longer rides out a link that drops for a while (a phone changing networks, flaky \
Wi-Fi); shorter notices a party that is gone sooner. A connection uses the shorter of its two \
ends' values, so every party should give the same.";

#[derive(Parser, Debug)]
#[command(
    name = "partyline",
    version,
    about = "Ad hoc secure multiparty computation: one invite, one command per party",
    long_about = LONG_ABOUT,
    after_help = "Configuration: flags override environment variables (PARTYLINE_*), which \
override the TOML file at $PARTYLINE_CONFIG or config.toml in the configuration directory \
(--config-dir; keys: server, name, python)."
)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). PARTYLINE_LOG takes a tracing filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The configuration directory: config.toml, your identity and your address book.
    /// Default: $XDG_CONFIG_HOME/partyline, else ~/.config/partyline.
    #[arg(long, value_name = "DIR", env = "PARTYLINE_CONFIG_DIR", global = true)]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the session server: coordinator (HTTPS API) and relay in one process.
    Serve(ServeArgs),
    /// Run a relay alone (no coordinator), e.g. in another region; `serve --relay` lists it.
    Relay(RelayArgs),
    /// Create a session and print its invite (the last line of stdout), or a short code (--code).
    Create(CreateArgs),
    /// Join a session and run the MPC program once every party is connected.
    Join(JoinArgs),
    /// Your long-term identity and the address book of parties you know.
    Id(IdArgs),
    /// Run a whole session on this machine: a server and N parties, each its own process.
    Demo(DemoArgs),
    /// Measure partyline against plain TCP on this machine: MPyC programs side by side, no root.
    Bench(BenchArgs),
    /// Emulated Internet (namespaces, NATs, latency) and the benchmark matrix; needs root.
    Lab(crate::cmd::lab::LabArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "The server keeps its sessions and its TLS certificate in --data-dir, \
so a restart loses nothing and invites stay valid. Parties need to reach the coordinator port \
(TCP) and the relay port (TCP, and UDP for address discovery): by default the relay uses the \
next port. Parties and browsers also ask the STUN port (UDP 3478 by default, see --stun-port) \
which address they are seen from: open it too, or they do without. Browser parties need only the coordinator port: it serves the web app at /join and \
passes /relay through to the relay. Browsers trust only a CA-issued certificate: see --tls-cert.

With --database postgres://…, the sessions live in PostgreSQL instead of SQLite: servers given \
the same database and the same certificate (cert.pem and key.pem copied into each --data-dir, or \
--tls-cert) serve the same sessions, and parties whose server stops answering go on through \
another. The schema is migrated on start.

The quotas' defaults let 100 sessions a minute through, of up to 16 parties each, from as many \
addresses or from one address (a NAT) up to the per-IP limits: a party makes about parties + 3 \
requests (announce, a long-poll per party joining, done) and 2 or 3 changes, a browser party about \
20 more requests for the page. A client over its own quota gets 429, everybody gets 503 when the \
server-wide one is spent; both say when to retry (Retry-After). What one IP can make the server \
store is bounded by --live-sessions-per-ip (each session keeps at most its parties' announcements, \
8 KiB each, for --session-hours; a done session is deleted --keep-done-secs after it ends). The \
relay serves only the parties of live sessions on this server. Deleted means gone from the disk: \
SQLite overwrites what it deletes, within a minute of the session's time (PostgreSQL reuses the \
space, see README; GET /v1/info says what is kept and how long)."
)]
pub struct ServeArgs {
    /// Address for the coordinator's HTTPS API.
    #[arg(long, default_value = "0.0.0.0:7700", env = "PARTYLINE_LISTEN")]
    pub listen: SocketAddr,
    /// Address for the relay (HTTPS and QUIC); default: the next port after --listen.
    #[arg(long, env = "PARTYLINE_RELAY_LISTEN")]
    pub relay_listen: Option<SocketAddr>,
    /// The URL parties use to reach the coordinator, e.g. https://mpc.example.org:7700.
    #[arg(long, env = "PARTYLINE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The URL parties use to reach the relay; default: the public URL's host with the relay port.
    #[arg(long, env = "PARTYLINE_PUBLIC_RELAY_URL")]
    pub public_relay_url: Option<String>,
    /// UDP port of the STUN responder (Binding only), on the relay's IP address: browser parties'
    /// ICE server, and where native parties learn the address a NAT maps them to. Default:
    /// STUN's standard 3478 (any free port if it is taken, or if --listen asks for port 0);
    /// 0: no STUN.
    #[arg(
        long,
        value_name = "PORT",
        env = "PARTYLINE_STUN_PORT",
        conflicts_with = "no_stun"
    )]
    pub stun_port: Option<u16>,
    /// Run no STUN responder (the same as --stun-port 0).
    #[arg(long)]
    pub no_stun: bool,
    /// Where sessions (SQLite) and the TLS certificate are kept.
    #[arg(long, default_value = "partyline-data", env = "PARTYLINE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Keep sessions in this PostgreSQL database instead of SQLite, e.g.
    /// postgres://partyline@localhost/partyline: several servers with the same database and
    /// certificate serve the same sessions.
    #[arg(long, value_name = "URL", env = "PARTYLINE_DATABASE")]
    pub database: Option<String>,
    /// Hours after its creation a session is deleted, done or not: long enough for the parties
    /// to gather, short enough that nothing of theirs stays for days.
    #[arg(long, default_value_t = 6, value_name = "HOURS", env = "PARTYLINE_SESSION_HOURS", value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_hours: u64,
    /// Seconds a done session stays visible, so that every party sees it ended, before it is
    /// deleted.
    #[arg(long, default_value_t = 600, value_name = "SECS", env = "PARTYLINE_KEEP_DONE_SECS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub keep_done_secs: u64,
    /// The browser party's files (built by scripts/build-web.sh), served at /join; default: the
    /// web app built into this binary (feature embed-web), else target/web next to the current
    /// directory or the binary, if it exists.
    #[arg(long, env = "PARTYLINE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Serve this certificate (PEM, leaf first) instead of the self-signed one, e.g. one
    /// browsers trust; invites then pin it. Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A relay of its own, e.g. in another region, as `partyline relay` prints its link:
    /// https://HOST:PORT#sha256=PIN. Repeat for each; parties use the nearest relay. Needs
    /// --relay-token.
    #[arg(long = "relay", value_name = "LINK", requires = "relay_token")]
    pub relays: Vec<ServerLink>,
    /// The token relays of their own show to ask whom to admit: the same as their --token
    /// (at least 16 random characters, e.g. from `openssl rand -hex 32`). Prefer the
    /// environment variable: a command line is visible to every user of the machine.
    #[arg(
        long,
        env = "PARTYLINE_RELAY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub relay_token: Option<String>,
    #[command(flatten)]
    pub quotas: QuotaArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "A relay of its own serves the sessions of one coordinator, for parties nearer to it than to the coordinator's relay (each party measures every relay and uses the nearest). It has its own TLS certificate in --data-dir, made on first start: the link it prints carries its pin. List the link on the coordinator with `partyline serve --relay LINK --relay-token TOKEN`. The relay admits only the parties of the coordinator's live sessions: it asks the coordinator, showing the token, and remembers an admission for 10 s; it asks every 10 s which of its sessions are still live and drops the connections of the ended ones. Parties need to reach its port on TCP (relay) and UDP (address discovery)."
)]
pub struct RelayArgs {
    /// Address for the relay: HTTPS on TCP, QUIC address discovery on UDP with the same port.
    #[arg(long, default_value = "0.0.0.0:7702", env = "PARTYLINE_RELAY_LISTEN")]
    pub listen: SocketAddr,
    /// The URL parties use to reach the relay, e.g. https://relay-sg.example.org:7702.
    #[arg(long, env = "PARTYLINE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where the relay's TLS certificate is kept.
    #[arg(
        long,
        default_value = "partyline-relay-data",
        env = "PARTYLINE_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// The coordinator's link as `partyline serve` prints it: https://HOST:PORT#sha256=PIN.
    #[arg(long, value_name = "LINK", env = "PARTYLINE_COORDINATOR")]
    pub coordinator: ServerLink,
    /// The coordinator's --relay-token. Prefer the environment variable: a command line is
    /// visible to every user of the machine.
    #[arg(
        long,
        env = "PARTYLINE_RELAY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// KiB a second one client may send through the relay (bursts of 4 s); 0: no limit.
    #[arg(long, env = "PARTYLINE_RELAY_KIB_PER_SECOND", default_value_t = Quotas::default().relay_bytes_per_second / 1024)]
    pub relay_kib_per_second: u32,
    /// Serve this certificate (PEM, leaf first) instead of the self-signed one. Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `partyline serve`'s quotas; "per IP" means per IPv4 address or IPv6 /64, 0 means no limit.
#[derive(Args, Debug)]
#[command(next_help_heading = "Quotas (per IP: one IPv4 address or IPv6 /64; 0: no limit)")]
pub struct QuotaArgs {
    /// No quota at all (the relay still serves only sessions): for a benchmark or a lab, where
    /// one address runs every party of many sessions.
    #[arg(long)]
    pub no_quotas: bool,
    /// Sessions one IP may create per minute.
    #[arg(long, env = "PARTYLINE_CREATES_PER_MINUTE", default_value_t = Quotas::default().creates_per_minute_per_ip)]
    pub creates_per_minute: u32,
    /// Sessions all clients together may create per minute.
    #[arg(long, env = "PARTYLINE_CREATES_PER_MINUTE_TOTAL", default_value_t = Quotas::default().creates_per_minute)]
    pub creates_per_minute_total: u32,
    /// Sessions one IP may have alive (not expired, not done) at once.
    #[arg(long, env = "PARTYLINE_LIVE_SESSIONS_PER_IP", default_value_t = Quotas::default().live_sessions_per_ip)]
    pub live_sessions_per_ip: u32,
    /// Sessions alive at once, all clients together.
    #[arg(long, env = "PARTYLINE_LIVE_SESSIONS", default_value_t = Quotas::default().live_sessions)]
    pub live_sessions: u32,
    /// Requests of any kind one IP may make per minute.
    #[arg(long, env = "PARTYLINE_REQUESTS_PER_MINUTE_PER_IP", default_value_t = Quotas::default().requests_per_minute_per_ip)]
    pub requests_per_minute_per_ip: u32,
    /// Requests per minute, all clients together.
    #[arg(long, env = "PARTYLINE_REQUESTS_PER_MINUTE", default_value_t = Quotas::default().requests_per_minute)]
    pub requests_per_minute: u32,
    /// Changes (announce, leave, done, create) one IP may make per minute.
    #[arg(long, env = "PARTYLINE_WRITES_PER_MINUTE_PER_IP", default_value_t = Quotas::default().writes_per_minute_per_ip)]
    pub writes_per_minute_per_ip: u32,
    /// Changes per minute, all clients together.
    #[arg(long, env = "PARTYLINE_WRITES_PER_MINUTE", default_value_t = Quotas::default().writes_per_minute)]
    pub writes_per_minute: u32,
    /// Long-polls (parties waiting for the others) one IP may hold open at once.
    #[arg(long, env = "PARTYLINE_WAITS_PER_IP", default_value_t = Quotas::default().waits_per_ip)]
    pub waits_per_ip: u32,
    /// Long-polls held open at once, all clients together.
    #[arg(long, env = "PARTYLINE_WAITS", default_value_t = Quotas::default().waits)]
    pub waits: u32,
    /// Connections one IP may hold open to the coordinator port.
    #[arg(long, env = "PARTYLINE_CONNECTIONS_PER_IP", default_value_t = Quotas::default().connections_per_ip)]
    pub connections_per_ip: u32,
    /// Connections to the coordinator port, all clients together (keep it below `ulimit -n`).
    #[arg(long, env = "PARTYLINE_CONNECTIONS", default_value_t = Quotas::default().connections)]
    pub connections: u32,
    /// KiB a second one client may send through the relay (bursts of 4 s).
    #[arg(long, env = "PARTYLINE_RELAY_KIB_PER_SECOND", default_value_t = Quotas::default().relay_bytes_per_second / 1024)]
    pub relay_kib_per_second: u32,
    /// Seconds a client has to send a request head; idle connections close after as long.
    #[arg(long, env = "PARTYLINE_HEADER_TIMEOUT", default_value_t = Quotas::default().header_timeout.as_secs(), value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout: u64,
    /// Megabytes all stored announcements may take together (the database grows with them).
    #[arg(long, env = "PARTYLINE_ANNOUNCEMENT_MB", default_value_t = 1024)]
    pub announcement_mb: u64,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The invite is a link: https://HOST:PORT/join#pl1.… Everything secret is \
after the #, which is never sent to the server. Share it with the parties over a channel you \
trust (whoever has it can join).

Short codes (--code): instead of the long invite, partyline prints a short code such as \
7-orbit-lamp-quiz to tell the others, e.g. aloud on a call. Its number is the nameplate the \
server lends while you host; its words are secret, never sent to anyone. `create --code` then \
keeps running as the session's host (it is not a party: to take a seat yourself, run \
`partyline join CODE` too, in another terminal) and shows who has joined. Each party runs \
`partyline join CODE --server LINK -- PROGRAM`, or opens https://HOST:PORT/join in a browser \
and types the code; their partyline and yours run a PAKE (SPAKE2) through the server, and yours \
hands the invite only to a party that knows the code, encrypted under the PAKE's key. The \
server sees neither the code nor the invite. Each wrong code costs its guesser a try: after \
--code-attempts wrong ones the code is burned (said here, and to everyone who tries it later), \
and the session is ended: make a new one. Once every seat is taken the code stops working and \
create exits 0.

Examples:
  partyline create --parties 3 --server 'https://mpc.example.org:7700#sha256=…'
  partyline create --parties 3 --code --server 'https://mpc.example.org:7700#sha256=…'
  partyline create --parties 5 --code --code-words 4 --code-attempts 2 --timeout 7200"
)]
pub struct CreateArgs {
    /// Also print the invite as a QR code, for opening it on a phone.
    #[arg(long)]
    pub qr: bool,
    /// Number of parties, including you.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parties: u16,
    /// The server, as `partyline serve` prints it: https://HOST:PORT#sha256=PIN. Without the
    /// pin, the certificate the server shows now is trusted and pinned in the invite.
    #[arg(long, env = "PARTYLINE_SERVER")]
    pub server: Option<String>,
    /// A label the other parties see, e.g. "salary survey".
    #[arg(long)]
    pub label: Option<String>,
    /// Print a short code instead of the invite, and stay running as the session's host,
    /// handing the invite to each party that gives the code, until every seat is taken.
    #[arg(long, conflicts_with = "qr")]
    pub code: bool,
    /// Secret words in the code (11 bits each; 3 words, 33 bits, make a guess about 1 in
    /// 8.6 billion).
    #[arg(long, value_name = "K", default_value_t = partyline_wire::Code::DEFAULT_WORDS, requires = "code",
          value_parser = clap::value_parser!(u16).range(3..=8).map(usize::from))]
    pub code_words: usize,
    /// Wrong codes tolerated before the code is burned.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "code",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub code_attempts: u32,
    /// Seconds to wait for the server, however slowly it answers; with --code, also how long
    /// to host the code until every seat is taken [default: 60, with --code 3600].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug)]
#[command(after_help = format!(
    "Examples:\n  partyline join 'https://h:7700/join#pl1.…' -- examples/secretsanta.py\n  \
partyline join 7-orbit-lamp-quiz --server 'https://h:7700#sha256=…' -- examples/secretsanta.py\n  \
partyline join INVITE --name alice --report run.json -- python3 my_mpc.py 42\n  \
partyline join --invite-file invite.txt -- examples/securesum.py\n  \
PARTYLINE_INVITE='https://h:7700/join#pl1.…' partyline join -- examples/securesum.py\n  \
partyline join - -- examples/securesum.py          (paste the invite, press Enter)\n  \
partyline join INVITE --name alice --expect alice,bob,carol --confirm -- examples/securesum.py\n  \
partyline join INVITE --name alice --expect alice,bob,carol -- examples/securesum.py   (all known)\n  \
partyline join INVITE --name alice --accept-changed carol -- examples/securesum.py\n\n\
The invite comes from exactly one of: the INVITE argument, `-` (a line on stdin), \
--invite-file or PARTYLINE_INVITE. Every local user can read a command line (ps, /proc), so on \
a shared machine use one of the other three.\n\n\
A short code (from `partyline create --code`, e.g. read out on a call) comes the same ways, \
with --server: partyline gives it to the session's host through the server in a PAKE \
(SPAKE2), and the host sends back the invite, encrypted under the PAKE's key; the server \
learns neither. A wrong code is refused and counts as one guess: after a few, the host burns \
the code, and everyone who tries it afterwards, even with the right words, is told so; ask \
the host for a new one then. From there on the session is the same as with the invite.\n\n\
PROGRAM gets MPyC's flags appended: -M N -I INDEX -P HOST:PORT (one per party). Any \
other TCP program can read PARTYLINE_PARTIES, PARTYLINE_INDEX, PARTYLINE_ADDRS (every party's \
HOST:PORT) and PARTYLINE_ADDR (its own) instead (with --no-mpyc-flags). On Linux party k is \
127.X.Y.(k+1) on one port, both from the session, the same on every party's machine, and a \
connection from party i reaches the program from party i's address; elsewhere, or for a \
second party of one session on the same machine, each party sees its peers on its own \
127.0.0.1 ports (partyline says so). A PROGRAM ending in .py runs with a Python that has MPyC {}.\n\n\
Check before you share: --expect and --confirm run once the roster is verified and the \
parties are connected, before anything is forwarded or the program starts. Every party's \
program starts only once every party has accepted the roster: each party tells every other \
that it accepted, with the roster's digest, and waits until all have (up to --timeout, so \
slower confirmers can take their time). If a check refuses, that party ends the session with \
the reason: no party's program starts, and every party exits naming it. A party that holds a \
different roster (the coordinator showed parties different rosters) also ends the session \
before any program starts.\n\n\
Known parties: with an identity (`partyline id new`), your announcement carries your identity \
key and its signature over this session, your name and your endpoint key. The roster shows every \
party as known (same identity as in your address book), new, no identity, or KEY CHANGED; a \
changed key (or none, for a name known with one) ends the session before any program starts \
unless --accept-changed NAME, and a signature that does not verify always does. Once every party \
has accepted the roster, the address book records the session. Before the program starts, the \
roster is printed again with each party's path (direct or relay).",
    mpyc::VERSION
))]
pub struct JoinArgs {
    /// The invite printed by `partyline create`, a short code such as 7-orbit-lamp-quiz
    /// printed by `partyline create --code` (with --server), or `-` to read either from stdin.
    pub invite: Option<String>,
    /// With a short code: the server, as the host's `partyline create --code` printed it
    /// (https://HOST:PORT#sha256=PIN). An invite names its server itself.
    #[arg(long, env = "PARTYLINE_SERVER")]
    pub server: Option<String>,
    /// Read the invite from FILE instead (e.g. the output of `partyline create`).
    #[arg(long, value_name = "FILE")]
    pub invite_file: Option<PathBuf>,
    /// Your name as the other parties see it.
    #[arg(long, env = "PARTYLINE_NAME")]
    pub name: Option<String>,
    /// Start the program only if the verified roster holds exactly these names, in any order,
    /// e.g. alice,bob,carol (you included); otherwise end the session for every party. A name
    /// in your address book must also show the identity recorded there (as always; see
    /// --accept-changed), so when every other party is known, no fingerprint comparison is
    /// needed, and join says so. A name not in it is matched by its name only: compare the
    /// fingerprint with that party, or record its identity first with `partyline id trust`.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub expect: Option<Vec<String>>,
    /// Start even though these parties (comma-separated names) show another identity than the
    /// one in your address book, or none; the new identity then replaces the old one. Without
    /// it such a party ends the session before any program starts. Check with the party first
    /// (`partyline id show` on their machine) that they really made a new one.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub accept_changed: Vec<String>,
    /// After the roster and its fingerprint are shown, wait until you type on stdin the
    /// fingerprint the others read out (its first 6 words or all 12); otherwise end the session
    /// for every party. The others wait for you to connect meanwhile, up to their --timeout.
    /// Stdin then cannot carry the invite too.
    #[arg(long)]
    pub confirm: bool,
    /// Send everything through the relay, never directly.
    #[arg(long)]
    pub relay_only: bool,
    /// The UDP port browser parties reach this party on over WebRTC (default: any free port).
    /// Open it in a firewall to let them in directly; where it is closed they use the relay.
    #[arg(long, value_name = "PORT", conflicts_with = "relay_only")]
    pub webrtc_port: Option<u16>,
    #[arg(long, value_name = "SECS", default_value_t = PeerTimeout::default(), help = PEER_TIMEOUT_HELP)]
    pub peer_timeout: PeerTimeout,
    /// Write a JSON report (paths, round-trip times, bytes, set-up time) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Seconds to wait for the server and the other parties to join (counted from the start),
    /// and then for the connections to them.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Do not append MPyC's -M/-I/-P flags to PROGRAM.
    #[arg(long)]
    pub no_mpyc_flags: bool,
    /// The port every party's address uses, instead of the one derived from the session
    /// (20000-29999); every party must give the same one.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: Option<u16>,
    /// Consecutive ports each party gets from its address's port on, each forwarded the
    /// same way, for programs that use one port per purpose (with --no-mpyc-flags; the
    /// program finds their sockets in PARTYLINE_LISTEN_FDS); every party must give the same.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub ports: u16,
    #[command(flatten)]
    pub python: PythonArgs,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub program: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "\
With an identity, every session announcement carries your identity's public key and its \
signature over the session id, your name and the session's endpoint key, so the others can \
recognise you next time: `join` shows each party as known (with its sessions since it was first \
seen), new, or KEY CHANGED, and refuses a changed key unless --accept-changed NAME. The address \
book is updated once a session has started (every party accepted the roster).

First time with someone: read your words to each other (`partyline id show`) over a channel \
you trust, and record theirs: `partyline id trust bob WORD1 … WORD12`. Or take them on first \
use: after your first session with bob he is known.

Files (in the configuration directory, --config-dir): identity.toml (your private key, 0600) \
and known_parties.toml (the address book, 0600); the directory is made 0700.")]
pub struct IdArgs {
    #[command(subcommand)]
    pub command: IdCommand,
}

#[derive(Subcommand, Debug)]
pub enum IdCommand {
    /// Make your long-term identity (an Ed25519 key) and print its words.
    New {
        /// Replace the identity you have: the others will see your key as changed.
        #[arg(long)]
        force: bool,
    },
    /// Print your identity as 12 words, for others to record with `id trust`.
    Show,
    /// Record NAME's identity from the 12 words they read out to you.
    Trust {
        /// The party's name, as they join with it.
        name: String,
        /// The 12 words `partyline id show` printed on their machine.
        #[arg(required = true, num_args = 1.., value_name = "WORDS")]
        words: Vec<String>,
        /// Replace other words already recorded for NAME.
        #[arg(long)]
        force: bool,
    },
    /// List the parties in your address book.
    List,
    /// Remove NAME from your address book: next time it is new.
    Forget { name: String },
}

/// `--python`'s help, naming the pinned MPyC release.
pub fn python_help() -> String {
    format!(
        "Python interpreter with mpyc {} installed; default: a venv partyline manages \
         (created on first use under ~/.cache/partyline)",
        mpyc::VERSION
    )
}

#[derive(Args, Debug, Clone)]
pub struct PythonArgs {
    #[arg(long, env = "PARTYLINE_PYTHON", help = python_help())]
    pub python: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Without PROGRAM the demo runs partyline's own Secret Santa: the parties \
jointly draw a random derangement that no single party chooses or knows in advance."
)]
pub struct DemoArgs {
    /// Number of parties.
    #[arg(short = 'n', long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub parties: u16,
    /// Send everything through the relay, never directly.
    #[arg(long)]
    pub relay_only: bool,
    #[arg(long, value_name = "SECS", default_value_t = PeerTimeout::default(), help = PEER_TIMEOUT_HELP)]
    pub peer_timeout: PeerTimeout,
    #[command(flatten)]
    pub python: PythonArgs,
    /// Program and arguments to run instead of the Secret Santa example.
    #[arg(last = true, value_name = "PROGRAM")]
    pub program: Vec<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "First the stream figures: a 1 KB round trip and one-way, echo and both-ways \
transfers over loopback TCP, a bare iroh connection and the tunnel, direct and through the relay, \
each with its CPU time per MB, and what an idle connection costs per peer (streams.md, \
streams.csv). Then the lab's loopback scenario: every party a process on this machine, \
no root, nothing emulated. Workloads: securesum.py (3 parties), sort.py 16 (3), secretsanta.py 8 \
(3), bulk.py 10 (3), sort.py 8 (5), or each at the party counts given with --parties (with 8 or \
more parties MPyC runs with -T 1: its default threshold would make the PRSS set-up grow as \
C(n, (n-1)/2)); each solution runs once per repetition, in turns. Prints the \
summary: median wall time (start to exit of every party process, with partyline's joining) and \
MPyC's own time (the computation), each with its ratio to plain tcp. --out gets results.csv, \
summary.md, plots/ and runs/ (every process's output), as with `partyline lab run`. Exits 1 if a \
run failed.\n\n\
Examples:\n  partyline bench\n  \
partyline bench --repeat 1 --out /tmp/bench\n  \
partyline bench --parties 3,5,10 --repeat 3\n  \
partyline bench --solutions tcp,tcp-ssl,partyline,partyline-relay\n  \
partyline bench --only streams     (one-way, echo, both ways, 1 KB round trip: tcp, bare iroh, tunnel)\n  \
partyline lab run --scenario loopback --demo sort --size high --parties 3,5   (other workloads)"
)]
pub struct BenchArgs {
    /// Runs of each workload with each solution; medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Party counts to run every workload at, e.g. 3,5,10; default: each workload's own.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=16))]
    pub parties: Vec<u16>,
    /// Solutions: tcp, tcp-ssl, partyline, partyline-relay (wireguard needs `partyline lab`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tcp,partyline,partyline-relay"
    )]
    pub solutions: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Run only this part: the raw stream figures, or the MPyC workloads.
    #[arg(long, value_enum)]
    pub only: Option<BenchPart>,
    #[command(flatten)]
    pub run: crate::cmd::lab::RunFlags,
}

/// The two parts of `partyline bench`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPart {
    /// One-way, echo, both-ways and 1 KB round trips: tcp, bare iroh, tunnel.
    Streams,
    /// The MPyC workloads over tcp and partyline.
    Mpyc,
}
