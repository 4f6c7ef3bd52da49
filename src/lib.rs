//! frontdesk: live chat for websites on XMPP. An external component (XEP-0114) that hosts one
//! MUC-style room per website visitor, tracks each session's state, and keeps every transcript
//! in SQLite.
//!
//! Layout: [`core`] is the sans-I/O heart (stanzas and ticks in, stanzas and store writes out);
//! [`shell`] is the tokio connection around it; [`store`] owns SQLite; [`config`] the TOML file;
//! [`address`] parses JIDs into typed rooms, sites and people; [`cli`] the subcommands.

// Stanzas are large values that move once from the socket into the core and out again; boxing
// them to please these lints would add an allocation per stanza for nothing.
#![allow(clippy::large_enum_variant, clippy::result_large_err)]

pub mod address;
pub mod cli;
pub mod config;
pub mod core;
pub mod fuzz;
pub mod render;
pub mod shell;
pub mod store;
pub mod time;
pub mod token;
