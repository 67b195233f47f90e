//! cairn-tools: the `cairn` command-line tool as a library: input readers,
//! the synthetic event generator, and the subcommands.

#![forbid(unsafe_code)]

pub mod backend;
pub mod cmd;
pub mod gen;
pub mod input;
pub mod progress;
