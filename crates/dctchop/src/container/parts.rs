//! One container written by many independent workers (docs/container.md §9).
//!
//! Each worker compresses its own contiguous range of the dataset into a **part**: a complete
//! container at the stem `OUT.part-PPPPP` (part number P, five digits), whose shard headers are
//! padded with [`HEADER_ROOM`] spare bytes. Workers need no coordination beyond their part
//! number, so shard names cannot collide. When every part is done, [`assemble`] (one process,
//! anywhere the files are visible) turns the parts into the container `OUT`: it checks every
//! part's headers (as [`super::open`] does), rewrites each shard's header in place with the
//! dataset-wide values (sample count, value range, shard numbering, `container_id`,
//! `graph_sha256`), renames the shard to `OUT.NNNNN.safetensors` and writes the decompress graph.
//! No payload byte is read or moved, so assembly costs a few KB per shard; payload CRCs stay
//! valid, and the new `container_id` covers every shard's CRC as for a single-process run.

use ndarray::ArrayView4;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{
    container_id, graph_path, open, read_header, sha256_hex, shard_path, Container, DatasetInfo,
    Entropy, Header, Payload, Writer,
};
use crate::error::{Error, Result};
use crate::graph::Direction;
use crate::input::SampleType;
use crate::output::{check_writable, TempFile};
use crate::spec::{Dtype, Spec};
use crate::{Codec, EngineOptions};

/// Spare bytes in each part shard's header, room for the longer dataset-wide values that
/// [`assemble`] writes (it falls back to rewriting the whole file if they do not fit).
pub const HEADER_ROOM: usize = 1024;

/// The stem of part `part` of container `stem`: `OUT.part-00003`.
pub fn part_stem(stem: &Path, part: usize) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(format!(".part-{part:05}"));
    PathBuf::from(s)
}

/// Streams one worker's samples into a part (see the module documentation).
pub struct PartWriter {
    stem: PathBuf,
    codec: Codec,
    writer: Writer,
    payload: Payload,
    dtype: SampleType,
    total: usize,
    written: usize,
    min: f64,
    max: f64,
}

impl PartWriter {
    /// Start part `part` of container `stem`: `total` samples of `spec` (whose batch is the
    /// graph batch the codec runs), stored as `payload`, of original element type `dtype`.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        stem: &Path,
        part: usize,
        spec: &Spec,
        payload: Payload,
        dtype: SampleType,
        total: usize,
        shard_bytes: u64,
        engine: &EngineOptions,
        force: bool,
    ) -> Result<PartWriter> {
        if total == 0 {
            return Err(Error::invalid_option("part samples", 0, "an integer >= 1"));
        }
        if spec.is_quantized() != matches!(payload, Payload::Codes { .. }) {
            return Err(Error::invalid_option(
                "payload",
                format!("{payload:?}"),
                "integer codes for a quantized spec, float coefficients otherwise",
            ));
        }
        let codec = Codec::new(spec, engine)?;
        let pstem = part_stem(stem, part);
        let writer = Writer::create(&pstem, spec, payload, total, shard_bytes, force, &[])?
            .with_header_room(HEADER_ROOM);
        Ok(PartWriter {
            stem: pstem,
            codec,
            writer,
            payload,
            dtype,
            total,
            written: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        })
    }

    /// The part's stem.
    pub fn stem(&self) -> &Path {
        &self.stem
    }

    /// Compress and append `[k, C, H, W]` samples (any k, in dataset order).
    pub fn push(&mut self, x: ArrayView4<'_, f32>) -> Result<()> {
        let k = x.shape()[0];
        if self.written + k > self.total {
            return Err(Error::invalid_input(
                &self.stem,
                format!(
                    "part holds {} samples: {} written, {k} more given",
                    self.total, self.written
                ),
            ));
        }
        let bad = x.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::invalid_input(
                &self.stem,
                format!(
                    "samples {}..{} contain {bad} non-finite values (NaN or Inf): not supported, \
                     replace them (e.g. numpy.nan_to_num) before compressing",
                    self.written,
                    self.written + k
                ),
            ));
        }
        for &v in x.iter() {
            self.min = self.min.min(v as f64);
            self.max = self.max.max(v as f64);
        }
        match self.payload {
            Payload::Float(store) => {
                let mut y = self.codec.compress(x)?;
                if store == Dtype::F16 {
                    y.mapv_inplace(|v| half::f16::from_f32(v).to_f32());
                }
                self.writer.push(y.view())?;
            }
            Payload::Codes { .. } => {
                let (codes, clamped) = self.codec.compress_codes(x)?;
                self.writer.push_codes(codes.view(), clamped as u64)?;
            }
        }
        self.written += k;
        Ok(())
    }

    /// Write the part's shards (no decompress graph: [`assemble`] writes it). Returns the part's
    /// stem.
    pub fn finish(self) -> Result<PathBuf> {
        if self.written != self.total {
            return Err(Error::invalid_input(
                &self.stem,
                format!(
                    "part holds {} samples but {} were written",
                    self.total, self.written
                ),
            ));
        }
        let spec = self.codec.plan().spec.clone();
        let info = DatasetInfo {
            dtype: self.dtype,
            shape: [self.total, spec.channels, spec.height, spec.width],
            min: self.min,
            max: self.max,
        };
        self.writer.finish(&info, &[], None)?;
        Ok(self.stem)
    }
}

/// The part stems `OUT.part-NNNNN` present beside `stem`, in part order.
pub fn find_parts(stem: &Path) -> Result<Vec<PathBuf>> {
    let dir = match stem.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = stem
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{base}.part-");
    let mut parts = Vec::new();
    for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let name = e.map_err(|e| Error::io(&dir, e))?.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        // Shard 0 of a part: `PPPPP.00000.safetensors`.
        if let Some(p) = rest.strip_suffix(".00000.safetensors") {
            if let Ok(n) = p.parse::<usize>() {
                if p.len() == 5 {
                    parts.push(n);
                }
            }
        }
    }
    parts.sort_unstable();
    Ok(parts.into_iter().map(|p| part_stem(stem, p)).collect())
}

/// Combine `parts` (part stems, in dataset order) into the container `stem`, and write its
/// decompress graph (see the module documentation). Refuses to replace existing files unless
/// `force` (then shards of an earlier, larger container at `stem` are removed). Returns the
/// opened result.
///
/// Not atomic across a crash: shards are renamed one by one, shard 0 last, so an interrupted
/// assembly leaves no openable container (and the parts that were not yet moved).
pub fn assemble(stem: &Path, parts: &[PathBuf], force: bool) -> Result<Container> {
    if parts.is_empty() {
        return Err(Error::NotFound {
            path: part_stem(stem, 0),
            expected: "at least one part (OUT.part-NNNNN.00000.safetensors) to assemble".into(),
        });
    }
    let opened: Vec<Container> = parts.iter().map(|p| open(p)).collect::<Result<_>>()?;
    let first = &opened[0].header;
    let total: usize = opened.iter().map(|c| c.len()).sum();
    // Parts agree on everything but their own batch (which only sizes graph runs).
    let same = |s: &Spec| s.clone().with_batch(1);
    for c in &opened[1..] {
        let h = &c.header;
        if same(&h.spec) != same(&first.spec)
            || h.payload != first.payload
            || h.info.dtype != first.info.dtype
        {
            return Err(Error::invalid_input(
                &c.shards[0],
                format!(
                    "does not belong with part {}: its spec, payload or original dtype differ",
                    opened[0].shards[0].display()
                ),
            ));
        }
    }
    let spec = first.spec.clone().with_batch(first.spec.batch.min(total));
    let info = DatasetInfo {
        dtype: first.info.dtype,
        shape: [total, spec.channels, spec.height, spec.width],
        min: opened
            .iter()
            .map(|c| c.header.info.min)
            .fold(f64::INFINITY, f64::min),
        max: opened
            .iter()
            .map(|c| c.header.info.max)
            .fold(f64::NEG_INFINITY, f64::max),
    };
    let shards: Vec<(&PathBuf, &Header)> = opened
        .iter()
        .flat_map(|c| c.shards.iter().zip(&c.headers))
        .collect();
    let count = shards.len();
    let crcs: Vec<&str> = shards.iter().map(|(_, h)| h.crc32.as_str()).collect();
    let id = container_id(&spec, &info, &crcs);
    let payload_bytes: u64 = shards.iter().map(|(_, h)| h.data_len).sum();
    let stored_ratio = info.original_bytes() as f64 / payload_bytes.max(1) as f64;
    let graph = crate::Plan::new(&spec)?
        .model(Direction::Decompress, crate::DEFAULT_OPSET)?
        .encode()?;
    let graph_file = graph_path(stem);
    let targets: Vec<PathBuf> = (0..count).map(|i| shard_path(stem, i)).collect();
    for p in targets.iter().chain([&graph_file]) {
        check_writable(p, force)?;
    }
    crate::output::write_atomic(&graph_file, &graph, force)?;
    let graph_digest = sha256_hex(&graph);
    let spec_json = serde_json::to_string(&spec).expect("spec serializes");
    let mut starts = Vec::with_capacity(count);
    let mut next = 0;
    for (_, h) in &shards {
        starts.push(next);
        next += h.samples;
    }
    // Shard 0 last: until it is in place there is no container to open.
    for i in (0..count).rev() {
        let (src, h) = shards[i];
        let mut meta = h.raw.clone();
        let mut set = |k: &str, v: String| {
            meta.insert(k.to_string(), v);
        };
        set("spec", spec_json.clone());
        set(
            "original_shape",
            serde_json::to_string(&info.shape).expect("json"),
        );
        set("value_min", format!("{:?}", info.min));
        set("value_max", format!("{:?}", info.max));
        set("stored_ratio", format!("{stored_ratio:?}"));
        set("shard_index", i.to_string());
        set("shard_count", count.to_string());
        set("shard_first_sample", starts[i].to_string());
        set("container_id", id.clone());
        set("graph_sha256", graph_digest.clone());
        let header = header_json(meta, h, &spec);
        move_shard(src, &targets[i], h, &header, force)?;
    }
    if force {
        for i in count.. {
            let p = shard_path(stem, i);
            if !p.is_file() || read_header(&p).is_err() {
                break;
            }
            let _ = fs::remove_file(&p);
        }
    }
    open(stem)
}

/// A shard header (JSON, keys sorted) with `meta` and the tensor of `h` (same bytes).
fn header_json(meta: HashMap<String, String>, h: &Header, spec: &Spec) -> Vec<u8> {
    let shape: Vec<usize> = match h.payload {
        Payload::Codes {
            entropy: Entropy::Zstd { .. },
            ..
        } => vec![h.data_len as usize],
        _ => {
            let mut s = spec.compressed_shape();
            s[0] = h.samples;
            s
        }
    };
    let info = safetensors::tensor::TensorInfo {
        dtype: h.payload.st_dtype(),
        shape,
        data_offsets: (0, h.data_len as usize),
    };
    let sorted: BTreeMap<String, String> = meta.into_iter().collect();
    serde_json::to_vec(&serde_json::json!({ "__metadata__": sorted, h.payload.tensor(): info }))
        .expect("string maps serialize")
}

/// Give the part shard `src` the header `json` and move it to `dst`: in place when the header
/// fits the old one's room (padded with spaces to the same length), else by copying.
fn move_shard(src: &Path, dst: &Path, h: &Header, json: &[u8], force: bool) -> Result<()> {
    let room = (h.data_start - 8) as usize;
    if json.len() <= room {
        let mut header = json.to_vec();
        header.resize(room, b' ');
        let mut f = OpenOptions::new()
            .write(true)
            .open(src)
            .map_err(|e| Error::io(src, e))?;
        f.seek(SeekFrom::Start(8))
            .and_then(|_| f.write_all(&header))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(src, e))?;
        check_writable(dst, force)?;
        return fs::rename(src, dst).map_err(|e| Error::io(dst, e));
    }
    let mut header = json.to_vec();
    header.resize(json.len().next_multiple_of(8), b' ');
    let mut out = TempFile::create(dst)?;
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut f = File::open(src).map_err(|e| Error::io(src, e))?;
    f.seek(SeekFrom::Start(h.data_start))
        .map_err(|e| Error::io(src, e))?;
    std::io::copy(&mut f, out.file()).map_err(|e| Error::io(dst, e))?;
    out.persist(force)?;
    fs::remove_file(src).map_err(|e| Error::io(src, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array4, Axis};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dctchop-parts-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn data(n: usize) -> Array4<f32> {
        Array4::from_shape_fn((n, 2, 20, 28), |(s, c, i, j)| {
            ((s * 31 + c * 7 + i * j) % 97) as f32 - 40.0
        })
    }

    /// Parts of 5, 1 and 6 samples assemble into a container that reads back as the codec's
    /// round trip of the whole dataset, with container-wide metadata.
    #[test]
    fn parts_assemble_into_one_checked_container() {
        let dir = scratch("ok");
        let stem = dir.join("x");
        let x = data(12);
        let spec = Spec::new(20, 28, 3).with_channels(2).with_batch(4);
        let payload = Payload::Float(Dtype::F32);
        let mut parts = Vec::new();
        for (i, (a, b)) in [(0, 5), (5, 6), (6, 12)].into_iter().enumerate() {
            let mut w = PartWriter::create(
                &stem,
                i,
                &spec,
                payload,
                SampleType::Float32,
                b - a,
                // Two samples per shard: parts end mid-shard.
                (crate::container::HEADER_RESERVE + 2 * 2 * 9 * 12 * 4) as u64,
                &EngineOptions::native(),
                false,
            )
            .unwrap();
            w.push(x.slice_axis(Axis(0), (a..b).into())).unwrap();
            parts.push(w.finish().unwrap());
        }
        assert_eq!(find_parts(&stem).unwrap(), parts);
        let c = assemble(&stem, &parts, false).unwrap();
        assert_eq!(c.len(), 12);
        assert_eq!(c.shards.len(), 3 + 1 + 3);
        assert_eq!(c.header.info.min, -40.0);
        assert!(find_parts(&stem).unwrap().is_empty());
        c.verify().unwrap();
        let mut codec = Codec::new(&spec, &EngineOptions::native()).unwrap();
        let y = codec.compress(x.view()).unwrap();
        let want = codec.decompress(y.view()).unwrap();
        let got: Vec<Array4<f32>> = c
            .loader(5, &EngineOptions::native())
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        let views: Vec<_> = got.iter().map(|a| a.view()).collect();
        assert_eq!(ndarray::concatenate(Axis(0), &views).unwrap(), want);
        // Refuses to overwrite, and parts that do not belong together.
        assert!(assemble(&stem, &parts, false).is_err());
        let mut w = PartWriter::create(
            &stem,
            7,
            &spec.clone().with_block(4),
            payload,
            SampleType::Float32,
            1,
            1 << 20,
            &EngineOptions::native(),
            false,
        )
        .unwrap();
        w.push(x.slice_axis(Axis(0), (0..1).into())).unwrap();
        let odd = w.finish().unwrap();
        let mut w = PartWriter::create(
            &stem,
            8,
            &spec,
            payload,
            SampleType::Float32,
            1,
            1 << 20,
            &EngineOptions::native(),
            false,
        )
        .unwrap();
        w.push(x.slice_axis(Axis(0), (0..1).into())).unwrap();
        let even = w.finish().unwrap();
        let e = assemble(&dir.join("y"), &[even, odd], false).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
