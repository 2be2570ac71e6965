//! partyline-mesh
