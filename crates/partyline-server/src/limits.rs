//! How often one client may create sessions: a token bucket per IP address.
//!
//! Creating a session is the only request that makes the server keep
//! something for a day, so it is the one worth limiting. The buckets live in
//! memory: forgetting them on restart only forgives a client early.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// Per-client token buckets holding up to `per_minute` creations, refilled
/// at `per_minute` a minute.
pub(crate) struct CreateLimit {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl CreateLimit {
    /// `per_minute == 0` turns the limit off.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    /// Takes one creation from `ip`'s bucket, or says how long until there
    /// is one.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(client(ip)).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(MINUTE.mul_f64((1.0 - bucket.tokens) / capacity))
        }
    }

    /// Forgets the buckets that have filled up again: they would start full anyway.
    pub(crate) fn forget_full(&self, now: Instant) {
        let capacity = f64::from(self.per_minute);
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, bucket| self.refilled(bucket, now) < capacity);
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let capacity = f64::from(self.per_minute);
        let elapsed = now.saturating_duration_since(bucket.updated);
        (bucket.tokens + capacity * elapsed.as_secs_f64() / MINUTE.as_secs_f64()).min(capacity)
    }
}

/// The key a client is limited under. An IPv6 host usually has a whole /64
/// to pick addresses from, so the /64 counts as one client; an IPv4 address
/// seen through an IPv6 socket counts as itself.
fn client(ip: IpAddr) -> IpAddr {
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

    #[test]
    fn bucket_empties_and_refills() {
        let limit = CreateLimit::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(limit.take(ip, t0).is_ok());
        assert!(limit.take(ip, t0).is_ok());
        let wait = limit.take(ip, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(limit.take(ip, t0 + wait).is_ok());
        assert!(limit.take("192.0.2.2".parse().unwrap(), t0).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_bucket() {
        let limit = CreateLimit::new(1);
        let t0 = Instant::now();
        assert!(limit.take("2001:db8::1".parse().unwrap(), t0).is_ok());
        assert!(limit.take("2001:db8::2".parse().unwrap(), t0).is_err());
        assert!(limit.take("2001:db8:0:1::1".parse().unwrap(), t0).is_ok());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let limit = CreateLimit::new(1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        limit.take(ip, t0).unwrap();
        limit.forget_full(t0);
        assert_eq!(limit.buckets.lock().unwrap().len(), 1);
        limit.forget_full(t0 + MINUTE);
        assert!(limit.buckets.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limit = CreateLimit::new(0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            assert!(limit.take(ip, Instant::now()).is_ok());
        }
    }
}
