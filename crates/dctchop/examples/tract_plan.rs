//! Print the plan tract makes of an ONNX graph after optimization: which ops it runs, with their
//! shapes. This is how bench/README.md found tract's extra copies (a MoveAxis around every left
//! product and an OptMatMulPack of the activation before every MatMul).
//!
//! `cargo run --release --example tract_plan -- FILE.onnx`

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: tract_plan FILE.onnx");
        std::process::exit(2);
    };
    let model = tract_onnx::onnx().model_for_path(&path)?.into_optimized()?;
    for node in model.nodes() {
        let shapes: Vec<String> = node
            .outputs
            .iter()
            .map(|o| format!("{:?}", o.fact.shape))
            .collect();
        println!(
            "{:>3} {:<14} -> [{}]",
            node.id,
            node.op().name(),
            shapes.join("; ")
        );
    }
    Ok(())
}
