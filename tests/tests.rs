//! The integration tests of the library and the `dctchop` binary, in one test binary (each test
//! binary links tract; one binary instead of eleven saves their link time and disk).
//! HDF5 input has its own binary, `tests/hdf5_input.rs`, built only with the `hdf5` feature.

mod common;

mod cli;
mod conformance;
mod data_io;
mod eval;
mod faults;
mod forms;
mod graphs;
mod hardening;
mod hdf5_disabled;
mod math;
mod native;
mod ort_engine;
mod quant;
mod targets;
