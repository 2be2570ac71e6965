//! partyline-server
