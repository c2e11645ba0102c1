//! A container shard's bytes: the safetensors header, the metadata parser and its checks, then
//! (when the header is accepted) opening the container and streaming the payload with its CRC,
//! zstd frame and finiteness checks, within the memory budget `decompress` applies.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let shard = scratch("c.00000.safetensors", data);
    let Ok(h) = dctchop::container::read_header(&shard) else {
        return;
    };
    let stem = dctchop::container::stem_of(&shard);
    let Ok(c) = dctchop::container::open(&stem) else {
        return;
    };
    // What decompress checks before reading: one batch within a small budget.
    if dctchop::pipeline::decompress_batch_bytes(&c, 1) > 256_000_000 {
        return;
    }
    let _ = c.verify();
    let _ = h;
});
