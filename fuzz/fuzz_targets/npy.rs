//! A `.npy` file: the whole-file reader (`run`'s input) and the streaming reader of `compress`
//! (header checks, then batches, within the memory budget compress applies).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let p = scratch("x.npy", data);
    let _ = dctchop::npy::read_npy(&p);
    let Ok(ds) = dctchop::input::open(std::slice::from_ref(&p)) else {
        return;
    };
    let spec = dctchop::Spec::new(ds.height, ds.width, 4).with_channels(ds.channels);
    if dctchop::pipeline::estimate_batch_bytes(&spec, 1) > 256_000_000 {
        return;
    }
    if let Ok(mut r) = ds.reader() {
        while let Ok(Some(_)) = r.next_batch(4) {}
    }
    // The path compress takes: integer samples kept in their type, batches recycled.
    if let Ok(mut r) = ds.reader() {
        while let Ok(Some((batch, _))) = r.next_pixels_with_range(4) {
            r.recycle_pixels(batch);
        }
    }
});
