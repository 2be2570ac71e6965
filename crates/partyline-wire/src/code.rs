//! [`Code`]: a short code such as `7-orbit-lamp-quiz`, spoken or typed
//! instead of an invite.
//!
//! The number is the *nameplate*: the coordinator hands it out while the host
//! waits, so that joiners find the host's mailbox, and it is no secret. The
//! words are the secret: chosen at random by the host from the BIP39 English
//! list (the one the session fingerprint uses, 2048 words, 11 bits each), and
//! never sent to anyone. The whole code is the password of a PAKE between host
//! and joiner ([`crate::code_exchange`]), so a guesser, the coordinator
//! included, tests one guess per attempt, and the host burns the code after a
//! few wrong ones. Three words (33 bits) against three tries give a guesser
//! odds of about 1 in 3 billion; [`Code::DEFAULT_WORDS`] is that.
use std::fmt;
use std::str::FromStr;

use bip39::Language;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Bits per BIP39 word.
const BITS_PER_WORD: usize = 11;

/// A nameplate: the number that leads a code, as the coordinator allocated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nameplate(pub u32);

impl Nameplate {
    /// The highest nameplate a code may carry: a server hands out the lowest
    /// free number, so real ones stay short.
    pub const MAX: u32 = 9_999_999;
}

impl fmt::Display for Nameplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Nameplate {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n @ 1..=Self::MAX) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Self(n)),
            _ => Err(CodeError::BadNameplate(s.to_string())),
        }
    }
}

/// A short code: a nameplate and [`Code::MIN_WORDS`] to [`Code::MAX_WORDS`]
/// secret words.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    nameplate: Nameplate,
    /// Indices into the BIP39 English list.
    words: Vec<u16>,
}

/// Why a text is not a short code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error(
        "this is not a short code: a code is a number and words joined by `-`, such as 7-orbit-lamp-quiz, as `partyline create --code` printed it"
    )]
    NotACode,
    #[error("{0:?} is not a code's number: it is a number from 1 to {max}", max = Nameplate::MAX)]
    BadNameplate(String),
    #[error(
        "{word:?} (word {position} of the code) is not one of the code's words (the BIP39 English list): check its spelling with the host"
    )]
    UnknownWord { word: String, position: usize },
    #[error(
        "the code has {got} words after its number; codes have {min} to {max}: check that you have all of it",
        min = Code::MIN_WORDS, max = Code::MAX_WORDS
    )]
    WordCount { got: usize },
}

impl Code {
    /// Words a code has unless the host asks for another number.
    pub const DEFAULT_WORDS: usize = 3;
    /// The fewest words: 33 bits, at least the 24 a spoken code should carry.
    pub const MIN_WORDS: usize = 3;
    /// The most words: 88 bits, more than any guesser can use up.
    pub const MAX_WORDS: usize = 8;

    /// A fresh code on `nameplate` with `words` random words.
    pub fn random(nameplate: Nameplate, words: usize) -> Result<Self, CodeError> {
        check_word_count(words)?;
        let mut rng = rand::rng();
        let words = (0..words)
            .map(|_| rng.random_range(0..1u16 << BITS_PER_WORD))
            .collect();
        Ok(Self { nameplate, words })
    }

    pub fn nameplate(&self) -> Nameplate {
        self.nameplate
    }

    /// The secret bits the words carry.
    pub fn secret_bits(&self) -> usize {
        self.words.len() * BITS_PER_WORD
    }

    /// The words alone, joined by `-` (what must never reach the server).
    pub fn words(&self) -> String {
        let list = Language::English.word_list();
        self.words
            .iter()
            .map(|&i| list[usize::from(i)])
            .collect::<Vec<_>>()
            .join("-")
    }
}

fn check_word_count(words: usize) -> Result<(), CodeError> {
    if (Code::MIN_WORDS..=Code::MAX_WORDS).contains(&words) {
        Ok(())
    } else {
        Err(CodeError::WordCount { got: words })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.nameplate, self.words())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}-…)", self.nameplate)
    }
}

impl FromStr for Code {
    type Err = CodeError;

    /// Reads a code as people type or paste it: any case, words separated by
    /// `-` or spaces, surrounding quotes and spaces ignored.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim().trim_matches(|c| c == '"' || c == '\'');
        let mut parts = text
            .split(|c: char| c == '-' || c.is_whitespace())
            .filter(|part| !part.is_empty());
        let number = parts.next().ok_or(CodeError::NotACode)?;
        if !number.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(CodeError::NotACode);
        }
        let nameplate = number.parse()?;
        let words = parts
            .enumerate()
            .map(|(i, word)| {
                Language::English
                    .find_word(&word.to_lowercase())
                    .ok_or_else(|| CodeError::UnknownWord {
                        word: word.to_string(),
                        position: i + 1,
                    })
            })
            .collect::<Result<Vec<u16>, CodeError>>()?;
        check_word_count(words.len())?;
        Ok(Self { nameplate, words })
    }
}

/// Whether `text` is meant as a code rather than an invite: it starts with a
/// digit (an invite starts with `https://`).
pub fn looks_like_code(text: &str) -> bool {
    text.trim()
        .trim_start_matches(['"', '\''])
        .starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_random_code_round_trips_and_carries_its_bits() {
        let code = Code::random(Nameplate(7), Code::DEFAULT_WORDS).unwrap();
        let text = code.to_string();
        assert!(text.starts_with("7-"), "{text}");
        assert_eq!(text.split('-').count(), 1 + Code::DEFAULT_WORDS);
        assert_eq!(text.parse::<Code>().unwrap(), code);
        assert!(code.secret_bits() >= 24);
        assert_eq!(code.secret_bits(), 33);
    }

    #[test]
    fn typing_noise_is_forgiven() {
        let code: Code = "7-orbit-lamp-quiz".parse().unwrap();
        for typed in [
            " 7 Orbit lamp  QUIZ\n",
            "'7-orbit-lamp-quiz'",
            "7 - orbit - lamp - quiz",
        ] {
            assert_eq!(typed.parse::<Code>().unwrap(), code, "{typed:?}");
        }
        assert_eq!(code.words(), "orbit-lamp-quiz");
        assert_eq!(code.nameplate(), Nameplate(7));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            "7-orbit-lamb-quiz".parse::<Code>().unwrap_err(),
            CodeError::UnknownWord {
                word: "lamb".into(),
                position: 2
            }
        );
        assert_eq!(
            "7-orbit-lamp".parse::<Code>().unwrap_err(),
            CodeError::WordCount { got: 2 }
        );
        assert_eq!(
            "orbit-lamp-quiz".parse::<Code>().unwrap_err(),
            CodeError::NotACode
        );
        assert_eq!("".parse::<Code>().unwrap_err(), CodeError::NotACode);
        assert!(matches!(
            "0-orbit-lamp-quiz".parse::<Code>().unwrap_err(),
            CodeError::BadNameplate(_)
        ));
        assert!(matches!(
            "7x-orbit-lamp-quiz".parse::<Code>().unwrap_err(),
            CodeError::BadNameplate(_)
        ));
        assert!(Code::random(Nameplate(1), 2).is_err());
        assert!(Code::random(Nameplate(1), Code::MAX_WORDS + 1).is_err());
    }

    #[test]
    fn codes_and_invites_are_told_apart() {
        assert!(looks_like_code("7-orbit-lamp-quiz"));
        assert!(looks_like_code(" '12 orbit"));
        assert!(!looks_like_code("https://h:1/join#pl1.AAAA"));
        assert!(!looks_like_code("-"));
    }

    #[test]
    fn debug_hides_the_words() {
        let code: Code = "7-orbit-lamp-quiz".parse().unwrap();
        assert_eq!(format!("{code:?}"), "Code(7-…)");
    }

    proptest! {
        #[test]
        fn any_code_round_trips(n in 1..=Nameplate::MAX, words in prop::collection::vec(0u16..2048, Code::MIN_WORDS..=Code::MAX_WORDS)) {
            let code = Code { nameplate: Nameplate(n), words };
            prop_assert_eq!(code.to_string().parse::<Code>().unwrap(), code);
        }

        #[test]
        fn garbage_never_panics(text in ".{0,200}") {
            let _ = text.parse::<Code>();
            let _ = looks_like_code(&text);
        }
    }
}
