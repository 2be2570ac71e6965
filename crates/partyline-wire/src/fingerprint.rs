//! [`Fingerprint`]: the session fingerprint that parties read aloud to each
//! other, as words from the BIP39 English word list.
//!
//! The fingerprint is 132 bits of a BLAKE3 hash of the roster, shown as 12
//! words of 11 bits each. Words are easier to read out and compare than
//! letters, and BIP39's list was chosen for that: 2048 common English words,
//! none of which is a prefix of another in its first four letters.
//!
//! # Full and short form
//! The full form (12 words, 132 bits) is what a careful comparison uses. The
//! short form is its first [`Fingerprint::SHORT_WORDS`] words (66 bits), quick
//! enough to read aloud on a call. The trade-off: to show two groups of parties
//! two different rosters with equal fingerprints, an attacker who controls the
//! coordinator *and* holds the invite can vary the keys of the parties it
//! fakes on both sides until the fingerprints collide. That is a birthday
//! search: about 2^33 hashes for the short form, within reach of one GPU while
//! a session waits; about 2^66 for the full form, out of reach. Against a
//! coordinator alone (no invite), or to match one fixed roster, even the short
//! form costs about 2^66. So: the short form catches a coordinator that lies;
//! compare the full form when you do not trust every invite holder.
use std::fmt;

use bip39::Language;

/// Bits per BIP39 word.
const BITS_PER_WORD: usize = 11;

/// A session fingerprint: equal on every party exactly when all hold the same roster.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Indices into the BIP39 English list, one per word.
    words: [u16; Fingerprint::WORDS],
}

impl Fingerprint {
    /// Words in the full form.
    pub const WORDS: usize = 12;
    /// Words in the short form, and the fewest that [`Fingerprint::matches`] accepts.
    pub const SHORT_WORDS: usize = 6;
    /// The hash bits the full form carries.
    pub const BITS: usize = Self::WORDS * BITS_PER_WORD;
    const AT_LEAST_128_BITS: () = assert!(Self::BITS >= 128);

    /// Takes the first [`Fingerprint::BITS`] bits of `hash`, most significant bit first.
    pub fn from_hash(hash: &[u8; 32]) -> Self {
        let () = Self::AT_LEAST_128_BITS;
        let bit = |i: usize| u16::from((hash[i / 8] >> (7 - i % 8)) & 1);
        let mut words = [0u16; Self::WORDS];
        for (w, word) in words.iter_mut().enumerate() {
            *word = (0..BITS_PER_WORD).fold(0, |acc, b| (acc << 1) | bit(w * BITS_PER_WORD + b));
        }
        Self { words }
    }

    /// All words, in order.
    pub fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        let list = Language::English.word_list();
        self.words.iter().map(move |&i| list[usize::from(i)])
    }

    /// The full form: all [`Fingerprint::WORDS`] words, separated by spaces (same as `Display`).
    pub fn full(&self) -> String {
        self.to_string()
    }

    /// The short form for reading aloud: the first [`Fingerprint::SHORT_WORDS`] words.
    pub fn short(&self) -> String {
        self.words()
            .take(Self::SHORT_WORDS)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reads all [`Fingerprint::WORDS`] words back, separated as
    /// [`Fingerprint::matches`] allows; `None` unless every word is on the
    /// list and there are exactly that many. For recording a fingerprint
    /// someone read out (`partyline id trust`), where a prefix is not enough.
    pub fn parse_full(typed: &str) -> Option<Self> {
        let list = Language::English.word_list();
        let indices: Vec<u16> = split_words(typed)
            .map(|word| list.iter().position(|w| *w == word).map(|i| i as u16))
            .collect::<Option<_>>()?;
        Some(Self {
            words: indices.try_into().ok()?,
        })
    }

    /// Whether `typed` is this fingerprint: the full form or its first
    /// [`Fingerprint::SHORT_WORDS`] or more words, in order. Case does not
    /// matter, and words may be separated by any mix of whitespace, `-`, `,`
    /// and `.`, so that a form copied from a message or typed quickly both work.
    pub fn matches(&self, typed: &str) -> bool {
        let typed: Vec<String> = split_words(typed).collect();
        (Self::SHORT_WORDS..=Self::WORDS).contains(&typed.len())
            && typed.iter().zip(self.words()).all(|(t, w)| t == w)
    }
}

/// The words of a typed fingerprint, lower case: any mix of whitespace,
/// `-`, `,` and `.` separates them.
fn split_words(typed: &str) -> impl Iterator<Item = String> + '_ {
    typed
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | ',' | '.'))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.words().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// SHA-256 of the official `english.txt` of BIP39 (one word per line).
    const ENGLISH_TXT_SHA256: &str =
        "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda";

    #[test]
    fn word_list_is_the_official_bip39_english_list() {
        let list = Language::English.word_list();
        let file: String = list.iter().map(|w| format!("{w}\n")).collect();
        let digest = Sha256::digest(file.as_bytes());
        assert_eq!(data_encoding::HEXLOWER.encode(&digest), ENGLISH_TXT_SHA256);
        assert_eq!(list.len(), 1 << BITS_PER_WORD);
    }

    #[test]
    fn carries_at_least_128_bits_and_every_one_counts() {
        let base = Fingerprint::from_hash(&[0x5a; 32]);
        for i in 0..Fingerprint::BITS {
            let mut hash = [0x5a; 32];
            hash[i / 8] ^= 0x80 >> (i % 8);
            assert_ne!(Fingerprint::from_hash(&hash), base, "bit {i} is ignored");
        }
    }

    #[test]
    fn known_hash_gives_known_words() {
        // All zero bits select the list's first word, all one bits its last.
        assert_eq!(
            Fingerprint::from_hash(&[0; 32]).to_string(),
            ["abandon"; 12].join(" ")
        );
        assert_eq!(
            Fingerprint::from_hash(&[0xff; 32]).short(),
            ["zoo"; 6].join(" ")
        );
    }

    #[test]
    fn matches_full_form_and_long_enough_prefixes_only() {
        let fp = Fingerprint::from_hash(&[0x17; 32]);
        let words: Vec<&str> = fp.words().collect();
        assert!(fp.matches(&fp.to_string()));
        assert!(fp.matches(&fp.short()));
        assert!(fp.matches(&format!("  {}  ", words[..8].join(" - ").to_uppercase())));
        assert!(fp.matches(&words[..7].join(",\t")));
        assert!(!fp.matches(&words[..Fingerprint::SHORT_WORDS - 1].join(" ")));
        assert!(!fp.matches(""));
        assert!(!fp.matches(&format!("{fp} {}", words[0])));
        let mut wrong = words.clone();
        wrong[3] = if words[3] == "zoo" { "abandon" } else { "zoo" };
        assert!(!fp.matches(&wrong.join(" ")));
        assert!(!fp.matches(&words[1..8].join(" ")));
    }

    #[test]
    fn parse_full_wants_all_words_from_the_list() {
        let fp = Fingerprint::from_hash(&[0x17; 32]);
        assert_eq!(Fingerprint::parse_full(&fp.to_string()), Some(fp));
        let shouted = fp.to_string().to_uppercase().replace(' ', " - ");
        assert_eq!(Fingerprint::parse_full(&shouted), Some(fp));
        assert_eq!(Fingerprint::parse_full(&fp.short()), None);
        assert_eq!(Fingerprint::parse_full(&format!("{fp} zoo")), None);
        let misspelt = fp.to_string().replacen(' ', "x ", 1);
        assert_eq!(Fingerprint::parse_full(&misspelt), None);
    }

    proptest! {
        #[test]
        fn parse_full_reads_back_any_fingerprint_and_never_panics(hash in any::<[u8; 32]>(), typed in ".{0,200}") {
            let fp = Fingerprint::from_hash(&hash);
            prop_assert_eq!(Fingerprint::parse_full(&fp.to_string()), Some(fp));
            if let Some(parsed) = Fingerprint::parse_full(&typed) {
                prop_assert!(parsed.matches(&typed));
            }
        }

        #[test]
        fn a_fingerprint_matches_itself_and_not_another(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (fa, fb) = (Fingerprint::from_hash(&a), Fingerprint::from_hash(&b));
            prop_assert!(fa.matches(&fa.to_string()));
            prop_assert!(fa.matches(&fa.short()));
            prop_assert_eq!(fa.matches(&fb.to_string()), fa == fb);
            prop_assert_eq!(fa.to_string().split(' ').count(), Fingerprint::WORDS);
        }

        #[test]
        fn matches_never_panics(typed in ".{0,200}") {
            let _ = Fingerprint::from_hash(&[1; 32]).matches(&typed);
        }
    }
}
