//! An image input: the header read `compress` and `eval` size their memory from, then the
//! decode (PNG, TIFF, JPEG in strict mode), within the memory budget they apply.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let _ = dctchop::input::decode_jpeg_strict(std::path::Path::new("x.jpg"), data);
    for ext in ["png", "tif"] {
        let p = scratch(&format!("x.{ext}"), data);
        let Ok(ds) = dctchop::input::open(std::slice::from_ref(&p)) else {
            continue;
        };
        let spec = dctchop::Spec::new(ds.height, ds.width, 4).with_channels(ds.channels);
        if dctchop::pipeline::estimate_batch_bytes(&spec, 1) > 256_000_000 {
            continue;
        }
        if let Ok(mut r) = ds.reader() {
            let _ = r.next_batch(1);
        }
    }
});
