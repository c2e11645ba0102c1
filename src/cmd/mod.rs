//! One module per subcommand: its flags (`…Args`, parsed by clap) and `run`, which turns them
//! into library calls and prints the result.

pub mod bench;
pub mod compress;
pub mod decompress;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod run;
