//! partyline-launch
