//! An ONNX file: the protobuf decoder, the dctchop metadata reader and the graph check that
//! `inspect` and `run` apply before any engine sees a graph.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.onnx");
    let _ = dctchop::graph::GraphInfo::from_bytes(path, data);
    if let Ok(model) = onnx_export::Model::decode(data) {
        let budget = dctchop::budget::Budget::new(64).ok();
        let _ = dctchop::graph_check::check(&model, path, data.len() as u64, budget);
        let _ = dctchop::graph::spec_from_model(&model);
        let _ = model.validate();
    }
});
