//! cairn-server: Cairn's wire protocol (both ends), the client library, and
//! the `cairnd` daemon's serving loop. docs/PROTOCOL.md is the protocol.

#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod convert;
pub mod daemon;
pub mod protocol;
pub mod sigv4;
pub mod tls;
