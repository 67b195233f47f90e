//! The workspace's root package. It owns the end-to-end tests (`tests/`)
//! and the benchmarks (`benches/`); the code lives in `engine/`
//! (cairn-engine), `server/` (cairn-server) and `tools/` (cairn-tools).
