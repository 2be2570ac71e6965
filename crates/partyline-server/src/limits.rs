//! Quotas: how much one client, and everybody together, may ask of the server.
//!
//! A public server takes requests from strangers, so every request costs the
//! asker a token: rates are token buckets (one per client and one shared by
//! all), and things held open (connections, long-polls) are counted while
//! they last. A client over its own share gets `429 Too Many Requests`; when
//! the shared budget is spent, everybody gets `503 Service Unavailable`, both
//! with `Retry-After`. Per-client limits are lower than the shared ones, so
//! one client alone cannot spend the shared budget and lock others out.
//!
//! The buckets and counters live in memory: forgetting them on restart only
//! forgives a client early. What the server stores for a day (sessions,
//! announcements) is bounded in the store, by the same client key.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// Every quota the server enforces; `0` turns a quota off.
///
/// The defaults let 100 honest sessions a minute through, from one client or
/// many, with room to spare (see each field), and stop a single client long
/// before it can fill memory or the disk.
#[derive(Clone, Debug)]
pub struct Quotas {
    /// Sessions one client may create per minute. A session creator needs one.
    pub creates_per_minute_per_ip: u32,
    /// Sessions everybody together may create per minute: 100 honest sessions
    /// a minute with room for twice as many.
    pub creates_per_minute: u32,
    /// Sessions one client may have alive at once (created and neither
    /// expired nor done): each stores up to `parties` announcements for up
    /// to a day, so this bounds the disk one client can use.
    pub live_sessions_per_ip: u32,
    /// Sessions alive at once, everybody together. 100 sessions a minute that
    /// end normally (a done session is forgotten after 10 minutes) keep
    /// about 1,000 alive; this leaves room for a day of abandoned ones.
    pub live_sessions: u32,
    /// Requests one client may make per minute, of any kind. A party makes
    /// about `parties + 3` (announce, a long-poll per party joining, done); a
    /// browser party about 20 more for the page. 1,200 a minute is what 30
    /// sessions of 3 parties (the creation limit) need from one address (a
    /// NAT, or a test machine), with the page loaded by every party, or 4
    /// sessions of 16.
    pub requests_per_minute_per_ip: u32,
    /// Requests per minute, everybody together: 100 sessions a minute of 16
    /// parties each, browsers included, is about 60,000.
    pub requests_per_minute: u32,
    /// Writes (create, announce, leave, done) one client may make per minute.
    /// A party makes two or three: 300 covers 30 sessions of 3 parties.
    pub writes_per_minute_per_ip: u32,
    /// Writes per minute, everybody together: 100 sessions of 16 parties make
    /// about 5,000; SQLite in WAL mode commits far more than that.
    pub writes_per_minute: u32,
    /// Long-polls one client may hold open at once: one per waiting party.
    pub waits_per_ip: u32,
    /// Long-polls held open at once, everybody together.
    pub waits: u32,
    /// Connections one client may hold open to the coordinator's port: a
    /// native party holds one, a browser party two or three (page, relay).
    pub connections_per_ip: u32,
    /// Connections to the coordinator's port, everybody together; keep it
    /// below the process's open-file limit (`ulimit -n`).
    pub connections: u32,
    /// Bytes a second one relay client may send through the relay (in bursts
    /// of four seconds' worth). MPC traffic is rounds of small messages; 4 MiB/s
    /// is far above what MPyC sends, and keeps one client from taking the
    /// server's bandwidth.
    pub relay_bytes_per_second: u32,
    /// Only the parties of live sessions on this server may use its relay.
    pub relay_gated: bool,
    /// How long a connection may take to send a whole request head (and,
    /// after TLS, its first byte); an idle kept-alive connection is closed
    /// after the same time.
    pub header_timeout: Duration,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            creates_per_minute_per_ip: 30,
            creates_per_minute: 300,
            live_sessions_per_ip: 1_000,
            live_sessions: 50_000,
            requests_per_minute_per_ip: 1_200,
            requests_per_minute: 60_000,
            writes_per_minute_per_ip: 300,
            writes_per_minute: 12_000,
            waits_per_ip: 128,
            waits: 4_096,
            connections_per_ip: 128,
            connections: 4_096,
            relay_bytes_per_second: 4 << 20,
            relay_gated: true,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Quotas {
    /// No quota at all, and a relay open to all: for a server that only this
    /// machine uses (`demo`, `bench`).
    pub fn unlimited() -> Self {
        Self {
            creates_per_minute_per_ip: 0,
            creates_per_minute: 0,
            live_sessions_per_ip: 0,
            live_sessions: 0,
            requests_per_minute_per_ip: 0,
            requests_per_minute: 0,
            writes_per_minute_per_ip: 0,
            writes_per_minute: 0,
            waits_per_ip: 0,
            waits: 0,
            connections_per_ip: 0,
            connections: 0,
            relay_bytes_per_second: 0,
            relay_gated: false,
            ..Self::default()
        }
    }
}

/// The quotas the coordinator enforces per request (the store and the
/// connection acceptor enforce the others).
pub(crate) struct Limits {
    pub(crate) creates: RateLimit,
    pub(crate) requests: RateLimit,
    pub(crate) writes: RateLimit,
    pub(crate) waits: Arc<Concurrency>,
}

impl Limits {
    pub(crate) fn new(quotas: &Quotas) -> Self {
        Self {
            creates: RateLimit::new(quotas.creates_per_minute_per_ip, quotas.creates_per_minute),
            requests: RateLimit::new(
                quotas.requests_per_minute_per_ip,
                quotas.requests_per_minute,
            ),
            writes: RateLimit::new(quotas.writes_per_minute_per_ip, quotas.writes_per_minute),
            waits: Concurrency::new(quotas.waits_per_ip, quotas.waits),
        }
    }

    /// Forgets the buckets of clients that have been quiet for a minute.
    pub(crate) fn forget_full(&self, now: Instant) {
        self.creates.forget_full(now);
        self.requests.forget_full(now);
        self.writes.forget_full(now);
    }
}

/// Why a request was refused, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This client is over its own share: `429`.
    Client { retry_after: Duration },
    /// Everybody together is over the shared budget: `503`.
    Everyone { retry_after: Duration },
}

/// A rate: token buckets holding up to `per_minute` tokens, refilled at
/// `per_minute` a minute, one per client and one shared by all.
pub(crate) struct RateLimit {
    per_client: u32,
    shared: u32,
    state: Mutex<Buckets>,
}

struct Buckets {
    clients: HashMap<IpAddr, Bucket>,
    shared: Bucket,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(capacity),
            updated: now,
        }
    }

    /// Brings the bucket up to `now`; returns how long until it holds a token.
    fn refill(&mut self, capacity: u32, now: Instant) -> Duration {
        let capacity = f64::from(capacity);
        let elapsed = now.saturating_duration_since(self.updated);
        self.tokens =
            (self.tokens + capacity * elapsed.as_secs_f64() / MINUTE.as_secs_f64()).min(capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            MINUTE.mul_f64((1.0 - self.tokens) / capacity)
        }
    }
}

impl RateLimit {
    /// `per_client` and `shared` tokens a minute; `0` turns either off.
    pub(crate) fn new(per_client: u32, shared: u32) -> Self {
        let now = Instant::now();
        Self {
            per_client,
            shared,
            state: Mutex::new(Buckets {
                clients: HashMap::new(),
                shared: Bucket::full(shared, now),
            }),
        }
    }

    /// Takes a token from `ip`'s bucket and the shared one, or from neither
    /// and says who is out and for how long.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Buckets { clients, shared } = &mut *state;
        let mut client_bucket = match self.per_client {
            0 => None,
            capacity => {
                let bucket = clients
                    .entry(client(ip))
                    .or_insert_with(|| Bucket::full(capacity, now));
                let wait = bucket.refill(capacity, now);
                if !wait.is_zero() {
                    return Err(Refusal::Client { retry_after: wait });
                }
                Some(bucket)
            }
        };
        if self.shared != 0 {
            let wait = shared.refill(self.shared, now);
            if !wait.is_zero() {
                return Err(Refusal::Everyone { retry_after: wait });
            }
            shared.tokens -= 1.0;
        }
        if let Some(bucket) = client_bucket.as_mut() {
            bucket.tokens -= 1.0;
        }
        Ok(())
    }

    /// Forgets the client buckets that have filled up again: they would start
    /// full anyway, so memory follows the clients of the last minute.
    pub(crate) fn forget_full(&self, now: Instant) {
        let capacity = self.per_client;
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clients
            .retain(|_, bucket| {
                bucket.refill(capacity, now);
                bucket.tokens < f64::from(capacity)
            });
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        self.state.lock().unwrap().clients.len()
    }
}

/// Things held open (connections, long-polls): at most `per_client` per
/// client and `shared` in all. A [`Held`] counts while it lives.
pub(crate) struct Concurrency {
    per_client: u32,
    shared: u32,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    clients: HashMap<IpAddr, u32>,
    total: u32,
}

/// One thing held open; dropping it gives the place back.
pub(crate) struct Held {
    owner: Arc<Concurrency>,
    client: IpAddr,
}

impl Concurrency {
    /// `0` turns either limit off.
    pub(crate) fn new(per_client: u32, shared: u32) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            shared,
            state: Mutex::default(),
        })
    }

    /// A place for `ip`, or a refusal. Places free up as others finish, so
    /// the refusal says to come back in a second.
    pub(crate) fn hold(self: &Arc<Self>, ip: IpAddr) -> Result<Held, Refusal> {
        let retry_after = Duration::from_secs(1);
        let client = client(ip);
        let mut counts = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = counts.clients.get(&client).copied().unwrap_or(0);
        if self.per_client != 0 && mine >= self.per_client {
            return Err(Refusal::Client { retry_after });
        }
        if self.shared != 0 && counts.total >= self.shared {
            return Err(Refusal::Everyone { retry_after });
        }
        counts.total += 1;
        counts.clients.insert(client, mine + 1);
        Ok(Held {
            owner: self.clone(),
            client,
        })
    }

    #[cfg(test)]
    fn total(&self) -> u32 {
        self.state.lock().unwrap().total
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self
            .owner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(mine) = counts.clients.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                counts.clients.remove(&self.client);
            }
        }
    }
}

/// The key a client is limited under. An IPv6 host usually has a whole /64
/// to pick addresses from, so the /64 counts as one client; an IPv4 address
/// seen through an IPv6 socket counts as itself.
pub(crate) fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn bucket_empties_and_refills() {
        let limit = RateLimit::new(2, 0);
        let t0 = Instant::now();
        assert!(limit.take(ip("192.0.2.1"), t0).is_ok());
        assert!(limit.take(ip("192.0.2.1"), t0).is_ok());
        let refusal = limit.take(ip("192.0.2.1"), t0).unwrap_err();
        let wait = Duration::from_secs(30);
        assert_eq!(refusal, Refusal::Client { retry_after: wait });
        assert!(limit.take(ip("192.0.2.1"), t0 + wait).is_ok());
        assert!(limit.take(ip("192.0.2.2"), t0).is_ok());
    }

    #[test]
    fn shared_bucket_refuses_everyone() {
        let limit = RateLimit::new(2, 3);
        let t0 = Instant::now();
        assert!(limit.take(ip("192.0.2.1"), t0).is_ok());
        assert!(limit.take(ip("192.0.2.1"), t0).is_ok());
        assert!(matches!(
            limit.take(ip("192.0.2.1"), t0),
            Err(Refusal::Client { .. })
        ));
        assert!(limit.take(ip("192.0.2.2"), t0).is_ok());
        assert!(matches!(
            limit.take(ip("192.0.2.3"), t0),
            Err(Refusal::Everyone { .. })
        ));
        // A refused request took no token from its own bucket.
        assert!(limit.take(ip("192.0.2.3"), t0 + MINUTE / 3).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_bucket() {
        let limit = RateLimit::new(1, 0);
        let t0 = Instant::now();
        assert!(limit.take(ip("2001:db8::1"), t0).is_ok());
        assert!(limit.take(ip("2001:db8::2"), t0).is_err());
        assert!(limit.take(ip("2001:db8:0:1::1"), t0).is_ok());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let limit = RateLimit::new(1, 0);
        let t0 = Instant::now();
        limit.take(ip("192.0.2.1"), t0).unwrap();
        limit.forget_full(t0);
        assert_eq!(limit.clients(), 1);
        limit.forget_full(t0 + MINUTE);
        assert_eq!(limit.clients(), 0);
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = RateLimit::new(0, 0);
        for _ in 0..100 {
            assert!(limit.take(ip("192.0.2.1"), Instant::now()).is_ok());
        }
    }

    #[test]
    fn places_are_given_back() {
        let places = Concurrency::new(2, 3);
        let a = places.hold(ip("192.0.2.1")).unwrap();
        let _b = places.hold(ip("192.0.2.1")).unwrap();
        assert!(matches!(
            places.hold(ip("192.0.2.1")),
            Err(Refusal::Client { .. })
        ));
        let _c = places.hold(ip("192.0.2.2")).unwrap();
        assert!(matches!(
            places.hold(ip("192.0.2.3")),
            Err(Refusal::Everyone { .. })
        ));
        drop(a);
        assert_eq!(places.total(), 2);
        assert!(places.hold(ip("192.0.2.1")).is_ok());
    }
}
