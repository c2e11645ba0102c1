//! The `dctchop` command line: parses flags once into validated arguments and hands them to the
//! `dctchop` library. One module per subcommand under `cmd/`; flag groups shared between
//! subcommands live in `args`.

mod args;
mod cmd;
mod plot;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dctchop",
    version,
    about = "DCT+Chop compression as portable ONNX graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the compress/decompress ONNX graph pair and a JSON sidecar for a spec.
    Export(cmd::export::ExportArgs),
    /// Measure compress/decompress throughput beside a memory copy (one JSON line per config
    /// with --json). Comma lists sweep: --res 64,256 --cf 2,4 --form full,8,32,auto.
    Bench(cmd::bench::BenchArgs),
    /// Print the spec, ops, shapes and ratio of an exported .onnx graph, or a container's
    /// metadata.
    Inspect(cmd::inspect::InspectArgs),
    /// Run an exported .onnx graph on a .npy tensor and write the result as .npy.
    Run(cmd::run::RunArgs),
    /// Compress .npy files or images into a sharded safetensors container (+ decompress graph).
    Compress(cmd::compress::CompressArgs),
    /// Decompress a container into a .npy, a .png or a directory of PNGs.
    Decompress(cmd::decompress::DecompressArgs),
    /// Measure what compression does to your data (ratio as stored, PSNR, SSIM, errors,
    /// throughput) beside JPEG; table, results.csv/json and plots in -o DIR.
    Eval(cmd::eval::EvalArgs),
}

fn main() {
    dctchop::keep_freed_memory();
    // `dctchop inspect … | head` ends quietly like any Unix tool, not with a panic.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Err(e) = dctchop::output::clean_up_on_signals() {
        eprintln!("dctchop: warning: Ctrl-C will not remove temporary files: {e}");
    }
    let result = match cli.command {
        Command::Export(a) => cmd::export::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Compress(a) => cmd::compress::run(a),
        Command::Decompress(a) => cmd::decompress::run(a),
        Command::Eval(a) => cmd::eval::run(a),
    };
    if let Err(e) = result {
        eprintln!("dctchop: error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line: a cause whose text is already shown (a library error
/// that quotes the OS or ONNX Runtime message it wraps) is not repeated, and line breaks inside
/// messages (ONNX Runtime's) become spaces.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
