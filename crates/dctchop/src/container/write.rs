//! Writing a container: streams coefficients or codes into per-shard payload temporaries, then
//! gives every shard its header and renames everything into place together.

use ndarray::{ArrayViewD, Axis};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{
    container_id, per_sample_bytes, samples_per_shard, shard_path, stem_of, DatasetInfo, Entropy,
    Payload, CHUNK_BYTES, FORMAT,
};
use crate::entropy::{ChunkCoder, CODE_ORDER};
use crate::error::{Error, Result};
use crate::output::{check_writable, Commit, CreatedDirs, TempFile};
use crate::quant::{CodeElem, CodesView};
use crate::spec::{Dtype, Spec};

/// One shard's payload temporary and what was written to it.
struct ShardTemp {
    file: TempFile,
    crc: crc32fast::Hasher,
    samples: usize,
    bytes: u64,
    /// zstd payloads: (samples, bytes) per frame.
    chunks: Vec<(usize, u64)>,
    clamped: u64,
}

/// Codes waiting to fill a chunk (one zstd frame).
enum Pending {
    I8(Vec<i8>),
    I16(Vec<i16>),
}

/// Streams coefficients (or codes) into shards. See the module documentation.
pub struct Writer {
    stem: PathBuf,
    spec: Spec,
    payload: Payload,
    total: usize,
    per_shard: usize,
    chunk_samples: usize,
    force: bool,
    shards: Vec<ShardTemp>,
    written: usize,
    coder: Option<ChunkCoder>,
    pending: Pending,
    pending_samples: usize,
    pending_clamped: u64,
    /// The output directories this writer created (removed again if it fails).
    created: CreatedDirs,
    /// Extra spaces after each shard's JSON header (see [`Writer::with_header_room`]).
    header_room: usize,
    /// Where each shard's payload starts in its temporary ([`Writer::with_header_reserve`]).
    reserved: u64,
}

impl Writer {
    /// Start a container of `total` samples of `spec` stored as `payload`. Refuses to overwrite
    /// existing shards (and the extra files named in `also_check`) unless `force`.
    pub fn create(
        stem: &Path,
        spec: &Spec,
        payload: Payload,
        total: usize,
        shard_bytes: u64,
        force: bool,
        also_check: &[PathBuf],
    ) -> Result<Writer> {
        let per_shard = samples_per_shard(spec, payload, shard_bytes);
        let shard_count = total.div_ceil(per_shard).max(1);
        for p in (0..shard_count)
            .map(|i| shard_path(stem, i))
            .chain(also_check.iter().cloned())
        {
            check_writable(&p, force)?;
        }
        let coder = match payload {
            Payload::Codes {
                entropy: Entropy::Zstd { level },
                ..
            } => Some(ChunkCoder::new(&spec.layout(), spec.channels, level)?),
            _ => None,
        };
        let pending = match payload {
            Payload::Codes {
                code: crate::quant::CodeType::I16,
                ..
            } => Pending::I16(Vec::new()),
            _ => Pending::I8(Vec::new()),
        };
        let chunk_samples =
            (CHUNK_BYTES / per_sample_bytes(spec, payload).max(1)).clamp(1, per_shard);
        let dir = stem.parent().unwrap_or(Path::new(""));
        let created = CreatedDirs::create(dir)?;
        Ok(Writer {
            stem: stem.to_path_buf(),
            spec: spec.clone(),
            payload,
            total,
            per_shard,
            chunk_samples,
            force,
            shards: Vec::new(),
            written: 0,
            coder,
            pending,
            pending_samples: 0,
            pending_clamped: 0,
            created,
            header_room: 0,
            reserved: 0,
        }
        .with_header_reserve())
    }

    /// Pad every shard's header with `bytes` more spaces (rounded up to a multiple of 8), so the
    /// header can later be rewritten in place with longer values: the parts of a container
    /// written by several workers get their final headers that way ([`super::parts`]).
    pub fn with_header_room(mut self, bytes: usize) -> Writer {
        self.header_room = bytes;
        self.with_header_reserve()
    }

    /// Sets the bytes left free at the start of each shard's payload temporary for its header:
    /// when the header fits there it is written in place and the temporary renamed, with no copy
    /// of the payload (a 26 MB copy took 37 ms of a 0.4 s compress). The metadata is 1–2 KB plus
    /// the zstd chunk lists (two numbers per frame); the spaces that pad it to the reserved size
    /// cost under 0.1 % of a shard that large. Small shards reserve nothing and are copied once
    /// (cheap), so they stay as small as they can be.
    fn with_header_reserve(mut self) -> Writer {
        let shard_samples = self.per_shard.min(self.total);
        self.reserved = if shard_samples * per_sample_bytes(&self.spec, self.payload) < 32 << 20 {
            0
        } else {
            let frames = shard_samples.div_ceil(self.chunk_samples.max(1));
            // Within the header room shards are sized with, so a shard stays within
            // --shard-bytes.
            (4096 + 24 * frames + self.header_room)
                .next_multiple_of(4096)
                .min(super::HEADER_RESERVE) as u64
        };
        self
    }

    /// Samples the writer gathers before it entropy-codes them as one zstd frame (1 when it
    /// writes each push as it comes).
    pub fn frame_samples(&self) -> usize {
        if self.coder.is_some() {
            self.chunk_samples
        } else {
            1
        }
    }

    pub fn shard_count(&self) -> usize {
        self.total.div_ceil(self.per_shard).max(1)
    }

    fn check_shape(&self, shape: &[usize], what: &str) -> Result<()> {
        let k = shape.first().copied().unwrap_or(0);
        if self.written + self.pending_samples + k > self.total
            || shape.get(1..) != Some(&self.spec.compressed_shape()[1..])
        {
            let mut expected = self.spec.compressed_shape();
            expected[0] = self.total - self.written - self.pending_samples;
            return Err(Error::Shape {
                what: format!(
                    "container writer: {what} after {} of {} samples",
                    self.written + self.pending_samples,
                    self.total
                ),
                expected,
                got: shape.to_vec(),
            });
        }
        Ok(())
    }

    /// The shard the next sample goes to, opened if needed.
    fn current(&mut self) -> Result<&mut ShardTemp> {
        let full = self
            .shards
            .last()
            .is_none_or(|s| s.samples == self.per_shard);
        if full {
            let i = self.shards.len();
            let mut file = TempFile::create(&shard_path(&self.stem, i))?;
            // The payload goes after the space its header will take (a hole until then).
            use std::io::Seek;
            let at = std::io::SeekFrom::Start(self.reserved);
            file.file().seek(at).map_err(|e| file.io_error(e))?;
            self.shards.push(ShardTemp {
                file,
                crc: crc32fast::Hasher::new(),
                samples: 0,
                bytes: 0,
                chunks: Vec::new(),
                clamped: 0,
            });
        }
        Ok(self.shards.last_mut().expect("opened above"))
    }

    fn append(&mut self, bytes: &[u8], samples: usize, chunk: bool, clamped: u64) -> Result<()> {
        let per_shard = self.per_shard;
        let s = self.current()?;
        s.file.write_all(bytes)?;
        s.crc.update(bytes);
        s.samples += samples;
        s.bytes += bytes.len() as u64;
        s.clamped += clamped;
        if chunk {
            s.chunks.push((samples, bytes.len() as u64));
        }
        if s.samples == per_shard {
            s.file.close()?;
        }
        self.written += samples;
        Ok(())
    }

    /// Append `[k, ...]` float coefficients (any k), in the spec's compressed layout.
    pub fn push(&mut self, coeffs: ArrayViewD<'_, f32>) -> Result<()> {
        let Payload::Float(store) = self.payload else {
            return Err(Error::InvalidOption {
                option: "container payload",
                value: "float coefficients".into(),
                allowed: "integer codes (the spec is quantized): use push_codes".into(),
            });
        };
        self.check_shape(coeffs.shape(), "coefficients")?;
        let mut bytes = Vec::with_capacity(per_sample_bytes(&self.spec, self.payload));
        for sample in coeffs.axis_iter(Axis(0)) {
            bytes.clear();
            match store {
                Dtype::F32 => sample.iter().for_each(|v| bytes.extend(v.to_le_bytes())),
                Dtype::F16 => sample
                    .iter()
                    .for_each(|v| bytes.extend(half::f16::from_f32(*v).to_le_bytes())),
            }
            self.append(&bytes, 1, false, 0)?;
        }
        Ok(())
    }

    /// Append `[k, ...]` codes (any k) of the spec's code type, in its compressed layout;
    /// `clamped` is how many of them were clamped when quantized (recorded per shard).
    pub fn push_codes(&mut self, codes: CodesView<'_>, clamped: u64) -> Result<()> {
        let Payload::Codes { code, entropy } = self.payload else {
            return Err(Error::InvalidOption {
                option: "container payload",
                value: "integer codes".into(),
                allowed: "float coefficients (the spec is not quantized): use push".into(),
            });
        };
        if codes.code_type() != code {
            return Err(Error::InvalidOption {
                option: "code type",
                value: codes.code_type().to_string(),
                allowed: format!("{code}, the spec's"),
            });
        }
        self.check_shape(codes.shape(), "codes")?;
        self.pending_clamped += clamped;
        match (codes, entropy) {
            (CodesView::I8(c), Entropy::None) => self.push_raw(c),
            (CodesView::I16(c), Entropy::None) => self.push_raw(c),
            (CodesView::I8(c), Entropy::Zstd { .. }) => self.push_chunked(c),
            (CodesView::I16(c), Entropy::Zstd { .. }) => self.push_chunked(c),
        }
    }

    fn push_raw<T: CodeElem>(&mut self, codes: ArrayViewD<'_, T>) -> Result<()> {
        let clamped = std::mem::take(&mut self.pending_clamped);
        let mut bytes = Vec::new();
        for (i, sample) in codes.axis_iter(Axis(0)).enumerate() {
            bytes.clear();
            for &v in sample.iter() {
                for b in 0..T::CODE.bytes() {
                    bytes.push(v.byte(b));
                }
            }
            // The clamped count of this call goes to the shard of its first sample.
            self.append(&bytes, 1, false, if i == 0 { clamped } else { 0 })?;
        }
        Ok(())
    }

    fn push_chunked<T: CodeElem>(&mut self, codes: ArrayViewD<'_, T>) -> Result<()>
    where
        Pending: PendingOf<T>,
    {
        for sample in codes.axis_iter(Axis(0)) {
            match sample.as_slice() {
                Some(v) => self.pending.buf().extend_from_slice(v),
                None => self.pending.buf().extend(sample.iter().copied()),
            }
            self.pending_samples += 1;
            let shard_left = self.per_shard
                - self
                    .shards
                    .last()
                    .filter(|s| s.samples < self.per_shard)
                    .map_or(0, |s| s.samples);
            if self.pending_samples == self.chunk_samples.min(shard_left) {
                self.flush_chunk::<T>()?;
            }
        }
        Ok(())
    }

    fn flush_chunk<T: CodeElem>(&mut self) -> Result<()>
    where
        Pending: PendingOf<T>,
    {
        if self.pending_samples == 0 {
            return Ok(());
        }
        let n = self.pending_samples;
        let frame = {
            let coder = self.coder.as_mut().expect("zstd payloads have a coder");
            let buf = <Pending as PendingOf<T>>::buf(&mut self.pending);
            let f = coder.encode(buf, n)?;
            buf.clear();
            f
        };
        self.pending_samples = 0;
        let clamped = std::mem::take(&mut self.pending_clamped);
        self.append(&frame, n, true, clamped)
    }

    /// Write every shard's header and payload, then rename all shards into place (plus the
    /// `extra` files, e.g. the decompress graph, whose SHA-256 goes into the metadata as
    /// `graph_sha256` when `graph` names one of them). With `force`, shards of an earlier, larger
    /// container at the same stem are removed. Returns the shard paths.
    pub fn finish(
        mut self,
        info: &DatasetInfo,
        extra: &[(PathBuf, Vec<u8>)],
        graph: Option<&Path>,
    ) -> Result<Vec<PathBuf>> {
        match &self.pending {
            Pending::I8(_) if self.coder.is_some() => self.flush_chunk::<i8>()?,
            Pending::I16(_) if self.coder.is_some() => self.flush_chunk::<i16>()?,
            _ => {}
        }
        if self.written != self.total {
            let mut expected = self.spec.compressed_shape();
            expected[0] = self.total;
            let mut got = expected.clone();
            got[0] = self.written;
            return Err(Error::Shape {
                what: "container writer: samples written before finish".into(),
                expected,
                got,
            });
        }
        let shards = std::mem::take(&mut self.shards);
        let crcs: Vec<String> = shards
            .iter()
            .map(|s| format!("{:08x}", s.crc.clone().finalize()))
            .collect();
        let payload_bytes: u64 = shards.iter().map(|s| s.bytes).sum();
        let stored_ratio = info.original_bytes() as f64 / payload_bytes.max(1) as f64;
        let id = container_id(
            &self.spec,
            info,
            &crcs.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let graph_digest = graph.and_then(|g| {
            extra
                .iter()
                .find(|(p, _)| p == g)
                .map(|(_, b)| super::sha256_hex(b))
        });
        let mut commit = Commit::new(self.force);
        let mut first = 0;
        let mut paths = Vec::new();
        let count = shards.len();
        for (i, (mut s, crc)) in shards.into_iter().zip(&crcs).enumerate() {
            s.file.close()?;
            let s_samples = s.samples;
            let path = shard_path(&self.stem, i);
            let meta = self.metadata(
                info,
                &s,
                i,
                count,
                first,
                stored_ratio,
                crc,
                &id,
                &graph_digest,
            );
            let mut header = header_bytes(meta, self.payload, &self.spec, &s);
            header.resize(header.len() + self.header_room.next_multiple_of(8), b' ');
            let reserved = self.reserved as usize;
            if 8 + header.len() <= reserved {
                // In place: the header, padded with spaces to the reserved size, over the hole
                // before the payload; the temporary becomes the shard.
                header.resize(reserved - 8, b' ');
                let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
                bytes.extend_from_slice(&header);
                let io = |e| Error::io(&path, e);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(s.file.temp_path())
                    .map_err(io)?;
                std::io::Write::write_all(&mut f, &bytes).map_err(io)?;
                f.sync_all().map_err(io)?;
                commit.add_temp(s.file)?;
            } else {
                let out = commit.add(&path)?;
                out.write_all(&(header.len() as u64).to_le_bytes())?;
                out.write_all(&header)?;
                let mut src =
                    File::open(s.file.temp_path()).map_err(|e| Error::io(s.file.target(), e))?;
                use std::io::Seek;
                src.seek(std::io::SeekFrom::Start(self.reserved))
                    .map_err(|e| Error::io(s.file.target(), e))?;
                std::io::copy(&mut src, out.file()).map_err(|e| Error::io(&path, e))?;
                drop(s); // removes the payload temporary
            }
            first += s_samples;
            paths.push(path);
        }
        for (path, bytes) in extra {
            commit.add_bytes(path, bytes)?;
        }
        commit.finish()?;
        self.created.keep();
        if self.force {
            remove_stale_shards(&self.stem, count);
        }
        Ok(paths)
    }

    #[allow(clippy::too_many_arguments)]
    fn metadata(
        &self,
        info: &DatasetInfo,
        s: &ShardTemp,
        shard: usize,
        count: usize,
        first: usize,
        stored_ratio: f64,
        crc: &str,
        id: &str,
        graph_digest: &Option<String>,
    ) -> HashMap<String, String> {
        let k = |v: &str| v.to_string();
        let spec_json = serde_json::to_string(&self.spec).expect("spec serializes");
        let mut m = HashMap::from([
            (k("format"), k(FORMAT)),
            (k("format_version"), k(self.payload.version(&self.spec))),
            (
                k("producer"),
                format!("dctchop {}", env!("CARGO_PKG_VERSION")),
            ),
            (k("spec"), spec_json),
            (k("layout"), k(self.spec.layout_name())),
            (k("original_dtype"), info.dtype.to_string()),
            (
                k("original_shape"),
                serde_json::to_string(&info.shape).expect("json"),
            ),
            (k("value_min"), format!("{:?}", info.min)),
            (k("value_max"), format!("{:?}", info.max)),
            (
                k("coefficient_ratio"),
                format!("{:?}", self.spec.compression_ratio()),
            ),
            (k("stored_ratio"), format!("{stored_ratio:?}")),
            (k("shard_index"), shard.to_string()),
            (k("shard_count"), count.to_string()),
            (k("shard_first_sample"), first.to_string()),
            (k("shard_samples"), s.samples.to_string()),
            (k("checksum"), format!("crc32:{crc}")),
            (k("container_id"), id.to_string()),
        ]);
        if let Some(g) = graph_digest {
            m.insert(k("graph_sha256"), g.clone());
        }
        match self.payload {
            Payload::Float(store) => {
                m.insert(k("store_dtype"), store.to_string());
            }
            Payload::Codes { code, entropy } => {
                let q = self
                    .spec
                    .quant
                    .as_ref()
                    .expect("codes need a quantized spec");
                m.insert(k("code_type"), code.to_string());
                m.insert(k("quant_step"), format!("{:?}", q.step));
                m.insert(k("clamped"), s.clamped.to_string());
                match entropy {
                    Entropy::None => {
                        m.insert(k("entropy"), k("none"));
                    }
                    Entropy::Zstd { level } => {
                        m.insert(k("entropy"), k("zstd"));
                        m.insert(k("zstd_level"), level.to_string());
                        m.insert(k("code_order"), k(CODE_ORDER));
                        let (samples, bytes): (Vec<usize>, Vec<u64>) =
                            s.chunks.iter().copied().unzip();
                        m.insert(
                            k("chunk_samples"),
                            serde_json::to_string(&samples).expect("json"),
                        );
                        m.insert(
                            k("chunk_bytes"),
                            serde_json::to_string(&bytes).expect("json"),
                        );
                    }
                }
            }
        }
        m
    }
}

/// Access to the pending buffer of one code type.
trait PendingOf<T> {
    fn buf(&mut self) -> &mut Vec<T>;
}

impl PendingOf<i8> for Pending {
    fn buf(&mut self) -> &mut Vec<i8> {
        match self {
            Pending::I8(v) => v,
            Pending::I16(_) => unreachable!("the writer's code type is i8"),
        }
    }
}

impl PendingOf<i16> for Pending {
    fn buf(&mut self) -> &mut Vec<i16> {
        match self {
            Pending::I16(v) => v,
            Pending::I8(_) => unreachable!("the writer's code type is i16"),
        }
    }
}

/// The shard header (JSON, space-padded to a multiple of 8 bytes as safetensors does). Keys
/// sorted, so equal inputs give byte-identical files.
fn header_bytes(
    meta: HashMap<String, String>,
    payload: Payload,
    spec: &Spec,
    s: &ShardTemp,
) -> Vec<u8> {
    let shape: Vec<usize> = match payload {
        Payload::Codes {
            entropy: Entropy::Zstd { .. },
            ..
        } => vec![s.bytes as usize],
        _ => {
            let mut sh = spec.compressed_shape();
            sh[0] = s.samples;
            sh
        }
    };
    let info = safetensors::tensor::TensorInfo {
        dtype: payload.st_dtype(),
        shape,
        data_offsets: (0, s.bytes as usize),
    };
    let sorted: std::collections::BTreeMap<String, String> = meta.into_iter().collect();
    let v = serde_json::json!({ "__metadata__": sorted, payload.tensor(): info });
    let mut h = serde_json::to_vec(&v).expect("string maps serialize");
    debug_assert!(
        serde_json::from_slice::<safetensors::tensor::Metadata>(&h).is_ok(),
        "a header safetensors accepts"
    );
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    h
}

/// After a forced overwrite: remove shards `count..` of an earlier, larger container at `stem`
/// (only files that are dctchop shards of that stem).
fn remove_stale_shards(stem: &Path, count: usize) {
    for i in count.. {
        let p = shard_path(stem, i);
        if !p.is_file() {
            break;
        }
        if super::read_header(&p).is_ok() && stem_of(&p) == stem {
            let _ = std::fs::remove_file(&p);
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{CodeType, Quant};
    use crate::{Codec, EngineOptions};
    use ndarray::Array4;

    /// A shard written with its header in the reserved room (no payload copy) reads back and
    /// verifies like one written by copying, with the payload at the reserved offset; a header
    /// too long for the room falls back to the copy, byte for byte the file of no reservation.
    #[test]
    fn header_in_place_or_copied_gives_the_same_container() {
        let dir = std::env::temp_dir().join(format!("dctchop-reserve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Spec::new(24, 40, 4)
            .with_channels(2)
            .with_batch(3)
            .with_quant(Quant::uniform(CodeType::I16, 0.05));
        let x = Array4::from_shape_fn((7, 2, 24, 40), |(s, c, i, j)| {
            ((s * 13 + c * 5 + i * 3 + j) % 29) as f32 * 0.37
        });
        let mut codec = Codec::new(&spec, &EngineOptions::native()).unwrap();
        let (codes, _) = codec.compress_codes(x.view()).unwrap();
        let payload = Payload::Codes {
            code: CodeType::I16,
            entropy: Entropy::Zstd { level: 1 },
        };
        let info = DatasetInfo {
            dtype: crate::input::SampleType::Float32,
            shape: [7, 2, 24, 40],
            min: 0.0,
            max: 28.0 * 0.37,
        };
        let write = |name: &str, reserved: u64| {
            let stem = dir.join(name);
            let mut w = Writer::create(&stem, &spec, payload, 7, 1 << 30, false, &[]).unwrap();
            w.reserved = reserved;
            w.push_codes(codes.view(), 0).unwrap();
            let shards = w.finish(&info, &[], None).unwrap();
            let c = super::super::open(&stem).unwrap();
            c.verify().unwrap();
            let back: Vec<_> = c
                .loader(4, &EngineOptions::native())
                .unwrap()
                .map(|b| b.unwrap())
                .collect();
            let leftovers = std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains(".tmp")
                })
                .count();
            assert_eq!(leftovers, 0, "{name}: no temporary left");
            (std::fs::read(&shards[0]).unwrap(), back)
        };
        let (copied, want) = write("copied", 0);
        let (in_place, got) = write("in_place", 8192);
        assert_eq!(got, want);
        assert_eq!(in_place.len(), 8192 + (copied.len() - header_end(&copied)));
        assert_eq!(
            header_end(&in_place),
            8192,
            "the payload starts at the reserved offset"
        );
        assert_eq!(&in_place[8192..], &copied[header_end(&copied)..]);
        let (fell_back, got) = write("fell_back", 64);
        assert_eq!(got, want);
        assert_eq!(fell_back, copied, "a header longer than the room: the copy");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Where a safetensors file's data starts.
    fn header_end(file: &[u8]) -> usize {
        8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize
    }
}
