//! The compressed container: shards of safetensors files (the normative description is
//! docs/container.md; this module implements it).
//!
//! A container `OUT` is the shards `OUT.00000.safetensors`, `OUT.00001.safetensors`, … and the
//! decompress graph `OUT.decompress.onnx`. Each shard is a plain safetensors file (8-byte
//! little-endian header length, JSON header, raw bytes) holding one tensor:
//! - **version 1** (float coefficients): `coefficients`, F32 or F16, the compressed layout of
//!   the shard's samples (`[n, C, nbh·CF, nbw·CF]` chop, `[n, C, K]` triangle);
//! - **version 2** (quantized): integer codes, either raw (`codes`, I8 or I16, the same layout)
//!   or entropy coded (`codes.zstd`, U8: one zstd frame per chunk of samples, in the order of
//!   [`crate::entropy`]).
//! - **version 3**: version 2 whose codes are of mixed channels (the spec's `quant.mix`, see
//!   [`crate::quant::ChannelMix`]). A new number so that readers which predate the channel
//!   transform refuse these shards instead of decoding the mixed channels as they are.
//!
//! The header's `__metadata__` (all strings) describes the dataset, the spec (with the
//! quantization), the shard's place, a CRC-32 of the payload bytes, and a `container_id` that
//! binds the shards of one container together (a digest of the spec, the dataset and every
//! shard's checksum, so the same input and options still give byte-identical files). Readers
//! check all of it ([`open`], [`read`]).
//!
//! Writing ([`Writer`]) streams: a batch at a time goes to a payload temporary per shard, so
//! memory holds one batch (plus one chunk of codes). At [`Writer::finish`] every shard gets its
//! header and all files are renamed into place together (see [`crate::output`]).

pub mod parts;
mod read;
mod write;

pub use parts::{assemble, PartWriter};
pub use read::{Loader, ShardData, ShardReader, StoredBatches};
pub use write::Writer;

use safetensors::tensor::Metadata;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::SampleType;
use crate::quant::CodeType;
use crate::spec::{Dtype, Spec};

pub const FORMAT: &str = "dctchop-container";
/// Float coefficients.
pub const FORMAT_VERSION: &str = "1";
/// Quantized codes.
pub const FORMAT_VERSION_CODES: &str = "2";
/// Quantized codes of mixed channels.
pub const FORMAT_VERSION_MIXED: &str = "3";
/// The tensor of a version-1 shard.
pub const TENSOR: &str = "coefficients";
/// The tensor of a version-2 shard with raw codes.
pub const CODES_TENSOR: &str = "codes";
/// The tensor of a version-2 shard with zstd frames.
pub const ZSTD_TENSOR: &str = "codes.zstd";
/// Room kept in each shard for its JSON header when sizing shards (headers are ~2 KB).
pub const HEADER_RESERVE: usize = 16 * 1024;
/// Raw codes per zstd frame (a chunk of whole samples, at least one): large enough for zstd's
/// tables, small enough to stream.
pub const CHUNK_BYTES: usize = 4 << 20;
/// The zstd level used unless asked otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Element type of float coefficients: [`Dtype::F32`] or [`Dtype::F16`].
pub type Store = Dtype;

/// The lossless stage of a quantized container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entropy {
    /// Raw codes (readable by any safetensors reader).
    None,
    /// zstd frames of the codes in [`crate::entropy::CODE_ORDER`], at this level.
    Zstd { level: i32 },
}

impl std::fmt::Display for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entropy::None => f.write_str("none"),
            Entropy::Zstd { level } => write!(f, "zstd (level {level})"),
        }
    }
}

/// What a container's shards hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Version 1: float coefficients.
    Float(Store),
    /// Version 2: integer codes of the spec's quantization.
    Codes { code: CodeType, entropy: Entropy },
}

impl Payload {
    /// The payload a spec is written with: codes when it is quantized, else floats of `store`.
    pub fn for_spec(spec: &Spec, store: Store, entropy: Entropy) -> Payload {
        match &spec.quant {
            Some(q) => Payload::Codes {
                code: q.code,
                entropy,
            },
            None => Payload::Float(store),
        }
    }

    /// Bytes of one stored value before any entropy stage.
    pub fn value_bytes(self) -> usize {
        match self {
            Payload::Float(d) => d.bytes(),
            Payload::Codes { code, .. } => code.bytes(),
        }
    }

    /// The format version of shards of `spec` stored as this payload.
    fn version(self, spec: &Spec) -> &'static str {
        match self {
            Payload::Float(_) => FORMAT_VERSION,
            Payload::Codes { .. } if spec.quant.as_ref().is_some_and(|q| q.mix.is_some()) => {
                FORMAT_VERSION_MIXED
            }
            Payload::Codes { .. } => FORMAT_VERSION_CODES,
        }
    }

    fn tensor(self) -> &'static str {
        match self {
            Payload::Float(_) => TENSOR,
            Payload::Codes {
                entropy: Entropy::None,
                ..
            } => CODES_TENSOR,
            Payload::Codes { .. } => ZSTD_TENSOR,
        }
    }

    fn st_dtype(self) -> safetensors::Dtype {
        match self {
            Payload::Float(Dtype::F32) => safetensors::Dtype::F32,
            Payload::Float(Dtype::F16) => safetensors::Dtype::F16,
            Payload::Codes {
                entropy: Entropy::Zstd { .. },
                ..
            } => safetensors::Dtype::U8,
            Payload::Codes {
                code: CodeType::I8, ..
            } => safetensors::Dtype::I8,
            Payload::Codes {
                code: CodeType::I16,
                ..
            } => safetensors::Dtype::I16,
        }
    }
}

/// What the whole dataset was (recorded in every shard).
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetInfo {
    /// Element type of the original data.
    pub dtype: SampleType,
    /// Original `[N, C, H, W]`.
    pub shape: [usize; 4],
    /// Smallest and largest original value.
    pub min: f64,
    pub max: f64,
}

impl DatasetInfo {
    /// Bytes of the original data.
    pub fn original_bytes(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64 * self.dtype.bytes() as u64
    }
}

/// A shard's metadata, parsed and checked.
#[derive(Clone, Debug)]
pub struct Header {
    pub spec: Spec,
    pub info: DatasetInfo,
    pub payload: Payload,
    pub shard_index: usize,
    pub shard_count: usize,
    pub first_sample: usize,
    pub samples: usize,
    /// Original bytes / payload bytes of all shards (headers excluded).
    pub stored_ratio: f64,
    /// CRC-32 (IEEE) of the shard's payload bytes, 8 lower-case hex digits.
    pub crc32: String,
    /// zstd payloads: samples per frame, and each frame's bytes.
    pub chunks: Vec<(usize, u64)>,
    /// Binds the shards of one container (absent in containers written before it existed).
    pub container_id: Option<String>,
    /// SHA-256 of the decompress graph beside the container (absent when none was written).
    pub graph_sha256: Option<String>,
    /// Codes clamped to the code type's range in this shard (version 2).
    pub clamped: u64,
    /// Offset of the payload in the file, and its length.
    pub data_start: u64,
    pub data_len: u64,
    /// All `__metadata__` strings as found.
    pub raw: HashMap<String, String>,
}

/// The path of shard `i` of container `stem`.
pub fn shard_path(stem: &Path, i: usize) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(format!(".{i:05}.safetensors"));
    PathBuf::from(s)
}

/// The path of the decompress graph written beside container `stem`.
pub fn graph_path(stem: &Path) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".decompress.onnx");
    PathBuf::from(s)
}

/// The container stem for a user path: `OUT`, `OUT.safetensors` or a shard `OUT.00003.safetensors`.
pub fn stem_of(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    let s = s.strip_suffix(".safetensors").unwrap_or(&s);
    if let Some((head, idx)) = s.rsplit_once('.') {
        if idx.len() == 5 && idx.bytes().all(|b| b.is_ascii_digit()) {
            return PathBuf::from(head);
        }
    }
    PathBuf::from(s)
}

/// The stem to write a container to for the user's `-o`: like [`stem_of`], but a directory
/// (or a path ending in a separator) is refused, since it would give hidden shard names.
pub fn output_stem(out: &Path) -> Result<PathBuf> {
    let s = out.as_os_str().to_string_lossy();
    if out.is_dir() || s.ends_with(std::path::MAIN_SEPARATOR) || s.ends_with('/') {
        return Err(Error::invalid_input(
            out,
            "is a directory: -o takes a container stem such as DIR/NAME (writes \
             DIR/NAME.00000.safetensors, ...)",
        ));
    }
    Ok(stem_of(out))
}

/// Whether a path names a container (a `.safetensors` file, or a stem whose shard 0 exists).
pub fn looks_like_container(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors") || shard_path(path, 0).is_file()
}

/// Samples per shard so that a shard file stays within `shard_bytes` (at least 1 sample); for
/// entropy-coded codes this bounds the raw codes, which zstd only shrinks.
pub fn samples_per_shard(spec: &Spec, payload: Payload, shard_bytes: u64) -> usize {
    let per = per_sample_bytes(spec, payload) as u64;
    (shard_bytes.saturating_sub(HEADER_RESERVE as u64) / per).max(1) as usize
}

/// Bytes of one sample's stored values before any entropy stage.
fn per_sample_bytes(spec: &Spec, payload: Payload) -> usize {
    spec.compressed_shape()[1..].iter().product::<usize>() * payload.value_bytes()
}

/// The `container_id` of a container: SHA-256 over the spec, the dataset and every shard's
/// payload checksum, in order (the first 32 hex digits).
pub fn container_id(spec: &Spec, info: &DatasetInfo, crcs: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(spec).expect("spec serializes"));
    h.update(format!(
        "{}|{:?}|{:?}|{:?}",
        info.dtype, info.shape, info.min, info.max
    ));
    for c in crcs {
        h.update(c.as_bytes());
    }
    hex(&h.finalize()[..16])
}

/// SHA-256 of `bytes`, 64 hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An opened container: the stem, its shards and shard 0's header.
#[derive(Clone, Debug)]
pub struct Container {
    pub stem: PathBuf,
    pub shards: Vec<PathBuf>,
    pub header: Header,
    /// Every shard's header, in order.
    pub headers: Vec<Header>,
}

/// Open a container by its stem or any of its shard paths: read every shard's header (not the
/// payloads) and check that they belong together, and that the decompress graph beside them,
/// when there is one, is the one they were written with.
pub fn open(path: &Path) -> Result<Container> {
    let stem = stem_of(path);
    let first = shard_path(&stem, 0);
    if !first.is_file() {
        let p = if path.exists() { path } else { &first };
        return Err(Error::NotFound {
            path: p.to_path_buf(),
            expected: "a container shard OUT.00000.safetensors (written by dctchop compress)"
                .into(),
        });
    }
    let header = read_header(&first)?;
    if header.shard_index != 0 || header.first_sample != 0 {
        return Err(Error::corrupt(
            &first,
            format!(
                "shard 00000 says it is shard {} starting at sample {}",
                header.shard_index, header.first_sample
            ),
        ));
    }
    let mut shards = vec![first];
    let mut headers = vec![header.clone()];
    let mut next_first = header.samples;
    for i in 1..header.shard_count {
        let p = shard_path(&stem, i);
        if !p.is_file() {
            return Err(Error::corrupt(
                &p,
                format!("missing: the container has {} shards", header.shard_count),
            ));
        }
        let h = read_header(&p)?;
        if h.spec != header.spec
            || h.info != header.info
            || h.payload != header.payload
            || h.shard_count != header.shard_count
            || h.container_id != header.container_id
            || h.graph_sha256 != header.graph_sha256
        {
            return Err(Error::corrupt(
                &p,
                "belongs to another container: its spec, dataset, payload, shard count or \
                 container_id differ from shard 00000",
            ));
        }
        if h.shard_index != i || h.first_sample != next_first {
            return Err(Error::corrupt(
                &p,
                format!(
                    "shard numbering: it says shard {} starting at sample {}, expected shard {i} \
                     starting at {next_first}",
                    h.shard_index, h.first_sample
                ),
            ));
        }
        next_first += h.samples;
        shards.push(p);
        headers.push(h);
    }
    if next_first != header.info.shape[0] {
        return Err(Error::corrupt(
            &shards[0],
            format!(
                "shards hold {next_first} samples but original_shape says {}",
                header.info.shape[0]
            ),
        ));
    }
    if let Some(id) = &header.container_id {
        let crcs: Vec<&str> = headers.iter().map(|h| h.crc32.as_str()).collect();
        let want = container_id(&header.spec, &header.info, &crcs);
        if *id != want {
            return Err(Error::corrupt(
                &shards[0],
                format!(
                    "container_id {id} does not match its shards (expected {want}): shards of \
                     different containers were mixed, or a header was edited"
                ),
            ));
        }
    }
    if let Some(digest) = &header.graph_sha256 {
        let g = graph_path(&stem);
        if g.is_file() {
            let bytes = std::fs::read(&g).map_err(|e| Error::io(&g, e))?;
            if sha256_hex(&bytes) != *digest {
                return Err(Error::corrupt(
                    &g,
                    "is not the decompress graph this container was written with (its SHA-256 \
                     differs from the shards' graph_sha256)",
                ));
            }
        }
    }
    Ok(Container {
        stem,
        shards,
        header,
        headers,
    })
}

fn read_prefix(path: &Path) -> Result<(Vec<u8>, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::unsupported(path, "is not a regular file"));
    }
    let len = meta.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| {
        Error::corrupt(
            path,
            "truncated: shorter than the 8-byte safetensors header length",
        )
    })?;
    let hlen = u64::from_le_bytes(n);
    if hlen > 100_000_000 || 8 + hlen > len {
        return Err(Error::corrupt(
            path,
            format!("truncated or not a safetensors file: header length {hlen}, file size {len}"),
        ));
    }
    let mut buf = vec![0u8; 8 + hlen as usize];
    buf[..8].copy_from_slice(&n);
    f.read_exact(&mut buf[8..])
        .map_err(|e| Error::io(path, e))?;
    Ok((buf, len))
}

/// Read and check a shard's header (not its payload).
pub fn read_header(path: &Path) -> Result<Header> {
    let (prefix, file_len) = read_prefix(path)?;
    let hlen = prefix.len() as u64 - 8;
    let meta: Metadata = serde_json::from_slice(&prefix[8..])
        .map_err(|e| Error::corrupt(path, format!("not a valid safetensors header: {e}")))?;
    let expect_len = 8 + hlen + meta.data_len() as u64;
    if file_len != expect_len {
        return Err(Error::corrupt(
            path,
            format!(
                "truncated or padded: {file_len} bytes, the safetensors header says {expect_len}"
            ),
        ));
    }
    let raw = meta.metadata().clone().unwrap_or_default();
    let mut h = parse_header(path, raw)?;
    let name = h.payload.tensor();
    let info = meta
        .info(name)
        .ok_or_else(|| Error::corrupt(path, format!("has no tensor named '{name}'")))?;
    let (begin, end) = info.data_offsets;
    h.data_start = 8 + hlen + begin as u64;
    h.data_len = (end - begin) as u64;
    let st = h.payload.st_dtype();
    let want: Vec<usize> = match h.payload {
        Payload::Codes {
            entropy: Entropy::Zstd { .. },
            ..
        } => {
            let frames: u64 = h.chunks.iter().map(|c| c.1).sum();
            vec![frames as usize]
        }
        _ => {
            let mut w = h.spec.compressed_shape();
            w[0] = h.samples;
            w
        }
    };
    if info.shape != want || info.dtype != st {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata/spec mismatch: tensor '{name}' is {:?} {:?}, the metadata ({} with {} \
                 samples) needs {:?} {:?}",
                info.dtype,
                info.shape,
                h.spec.layout_name(),
                h.samples,
                st,
                want
            ),
        ));
    }
    Ok(h)
}

fn parse_header(path: &Path, raw: HashMap<String, String>) -> Result<Header> {
    let get = |k: &str| -> Result<&String> {
        raw.get(k)
            .ok_or_else(|| Error::corrupt(path, format!("metadata field '{k}' is missing")))
    };
    let bad = |k: &str, v: &str, allowed: &str| {
        Error::corrupt(
            path,
            format!("metadata field '{k}' = '{v}' is invalid: allowed is {allowed}"),
        )
    };
    let num = |k: &str| -> Result<usize> {
        let v = get(k)?;
        v.parse().map_err(|_| bad(k, v, "a non-negative integer"))
    };
    let float = |k: &str| -> Result<f64> {
        let v = get(k)?;
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(k, v, "a finite number"))
    };
    if get("format")? != FORMAT {
        return Err(Error::unsupported(
            path,
            format!(
                "metadata field 'format' = '{}': not a {FORMAT} shard",
                get("format")?
            ),
        ));
    }
    let version = get("format_version")?.as_str();
    if ![FORMAT_VERSION, FORMAT_VERSION_CODES, FORMAT_VERSION_MIXED].contains(&version) {
        return Err(Error::unsupported(
            path,
            format!(
                "metadata field 'format_version' = '{version}': this dctchop reads versions \
                 {FORMAT_VERSION}, {FORMAT_VERSION_CODES} and {FORMAT_VERSION_MIXED}"
            ),
        ));
    }
    let spec: Spec = serde_json::from_str(get("spec")?).map_err(|e| {
        bad(
            "spec",
            get("spec").map(|s| s.as_str()).unwrap_or(""),
            &format!("a dctchop spec JSON ({e})"),
        )
    })?;
    spec.validate()
        .map_err(|e| Error::corrupt(path, format!("metadata field 'spec': {e}")))?;
    let layout = get("layout")?;
    if layout != spec.layout_name() {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata/spec mismatch: layout '{layout}' but the spec's layout is '{}'",
                spec.layout_name()
            ),
        ));
    }
    let mut chunks = Vec::new();
    let mut clamped = 0;
    let payload = if version == FORMAT_VERSION {
        if spec.quant.is_some() {
            return Err(Error::corrupt(
                path,
                "a version 1 (float) shard with a quantized spec",
            ));
        }
        let store: Store = get("store_dtype")?.parse().map_err(|e: String| {
            bad(
                "store_dtype",
                get("store_dtype").map(|s| s.as_str()).unwrap_or(""),
                &e,
            )
        })?;
        Payload::Float(store)
    } else {
        let q = spec.quant.as_ref().ok_or_else(|| {
            Error::corrupt(
                path,
                format!("a version {version} (codes) shard whose spec has no quantization"),
            )
        })?;
        if (version == FORMAT_VERSION_MIXED) != q.mix.is_some() {
            return Err(Error::corrupt(
                path,
                format!(
                    "metadata contradicts the spec: format_version {version} but the spec's \
                     channel transform is {}",
                    q.mix.map_or("none".to_string(), |m| m.to_string())
                ),
            ));
        }
        let code: CodeType = get("code_type")?
            .parse()
            .map_err(|e: String| bad("code_type", get("code_type").unwrap(), &e))?;
        let step = float("quant_step")?;
        if code != q.code || step.to_bits() != q.step.to_bits() {
            return Err(Error::corrupt(
                path,
                format!(
                    "metadata contradicts the spec's quantization: code_type {code}, quant_step \
                     {step:?}; the spec says {}, {:?}",
                    q.code, q.step
                ),
            ));
        }
        clamped = num("clamped")? as u64;
        let entropy = match get("entropy")?.as_str() {
            "none" => Entropy::None,
            "zstd" => {
                let level = get("zstd_level")?;
                let level: i32 = level
                    .parse()
                    .ok()
                    .filter(|l| crate::entropy::LEVELS.contains(l))
                    .ok_or_else(|| bad("zstd_level", level, "an integer in 1..=22"))?;
                let order = get("code_order")?;
                if order != crate::entropy::CODE_ORDER {
                    return Err(Error::unsupported(
                        path,
                        format!(
                            "metadata field 'code_order' = '{order}': this dctchop reads {}",
                            crate::entropy::CODE_ORDER
                        ),
                    ));
                }
                let samples: Vec<usize> = serde_json::from_str(get("chunk_samples")?)
                    .map_err(|_| bad("chunk_samples", get("chunk_samples").unwrap(), "a list"))?;
                let bytes: Vec<u64> = serde_json::from_str(get("chunk_bytes")?)
                    .map_err(|_| bad("chunk_bytes", get("chunk_bytes").unwrap(), "a list"))?;
                if samples.len() != bytes.len() || samples.contains(&0) {
                    return Err(Error::corrupt(
                        path,
                        "metadata fields chunk_samples and chunk_bytes do not pair up",
                    ));
                }
                chunks = samples.into_iter().zip(bytes).collect();
                Entropy::Zstd { level }
            }
            other => return Err(bad("entropy", other, "none or zstd")),
        };
        Payload::Codes { code, entropy }
    };
    let dtype_name = get("original_dtype")?;
    let dtype = SampleType::from_numpy_name(dtype_name)
        .ok_or_else(|| bad("original_dtype", dtype_name, &SampleType::allowed()))?;
    let shape: [usize; 4] = serde_json::from_str(get("original_shape")?).map_err(|_| {
        bad(
            "original_shape",
            get("original_shape").map(|s| s.as_str()).unwrap_or(""),
            "[N, C, H, W]",
        )
    })?;
    if shape[1..] != [spec.channels, spec.height, spec.width] {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata/spec mismatch: original_shape {shape:?} but the spec is {}x{}x{} (C x H x W)",
                spec.channels, spec.height, spec.width
            ),
        ));
    }
    let checksum = get("checksum")?;
    let crc = checksum
        .strip_prefix("crc32:")
        .filter(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad("checksum", checksum, "crc32: followed by 8 hex digits"))?
        .to_ascii_lowercase();
    let hexdigest = |k: &str, len: usize| -> Result<Option<String>> {
        match raw.get(k) {
            None => Ok(None),
            Some(v) if v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(v.to_ascii_lowercase()))
            }
            Some(v) => Err(bad(k, v, &format!("{len} hex digits"))),
        }
    };
    let (min, max) = (float("value_min")?, float("value_max")?);
    if min > max {
        return Err(Error::corrupt(
            path,
            format!("metadata fields value_min {min} > value_max {max}"),
        ));
    }
    let stored_ratio = float("stored_ratio")?;
    if stored_ratio <= 0.0 {
        return Err(bad("stored_ratio", get("stored_ratio")?, "a number > 0"));
    }
    let h = Header {
        info: DatasetInfo {
            dtype,
            shape,
            min,
            max,
        },
        payload,
        shard_index: num("shard_index")?,
        shard_count: num("shard_count")?,
        first_sample: num("shard_first_sample")?,
        samples: num("shard_samples")?,
        stored_ratio,
        crc32: crc,
        chunks,
        container_id: hexdigest("container_id", 32)?,
        graph_sha256: hexdigest("graph_sha256", 64)?,
        clamped,
        data_start: 0,
        data_len: 0,
        spec,
        raw: HashMap::new(),
    };
    if h.samples == 0
        || h.shard_count == 0
        || h.shard_index >= h.shard_count
        || h.first_sample + h.samples > h.info.shape[0]
    {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata fields shard_index {} / shard_count {} / shard_first_sample {} / \
                 shard_samples {} are inconsistent (with {} samples in all)",
                h.shard_index, h.shard_count, h.first_sample, h.samples, h.info.shape[0]
            ),
        ));
    }
    if !h.chunks.is_empty() && h.chunks.iter().map(|c| c.0).sum::<usize>() != h.samples {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata field chunk_samples adds up to {} samples, shard_samples says {}",
                h.chunks.iter().map(|c| c.0).sum::<usize>(),
                h.samples
            ),
        ));
    }
    Ok(Header { raw, ..h })
}

impl Container {
    /// Total samples.
    pub fn len(&self) -> usize {
        self.header.info.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of every shard file.
    pub fn file_bytes(&self) -> Result<u64> {
        self.shards
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .map(|m| m.len())
                    .map_err(|e| Error::io(p, e))
            })
            .sum()
    }

    /// Read all of shard `i`, verifying its checksum (and every zstd frame's).
    pub fn read_shard(&self, i: usize) -> Result<ShardData> {
        let mut r = ShardReader::open(&self.shards[i], self.headers[i].clone())?;
        r.take(self.headers[i].samples)
    }

    /// Read every payload and check every checksum, without decompressing.
    pub fn verify(&self) -> Result<()> {
        for (p, h) in self.shards.iter().zip(&self.headers) {
            ShardReader::open(p, h.clone())?.verify()?;
        }
        Ok(())
    }

    /// A loader yielding decompressed `[≤batch, C, H, W]` batches in order, over all shards,
    /// with memory bounded by one batch (and one chunk of codes).
    pub fn loader(&self, batch: usize, opts: &crate::EngineOptions) -> Result<Loader> {
        Loader::new(self.clone(), batch, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_shard_names() {
        for p in [
            "out/x",
            "out/x.safetensors",
            "out/x.00000.safetensors",
            "out/x.00012.safetensors",
        ] {
            assert_eq!(stem_of(Path::new(p)), PathBuf::from("out/x"), "{p}");
        }
        // Only a 5-digit shard number is stripped.
        assert_eq!(
            stem_of(Path::new("a.v2.safetensors")),
            PathBuf::from("a.v2")
        );
        assert_eq!(
            shard_path(Path::new("out/x"), 3),
            PathBuf::from("out/x.00003.safetensors")
        );
        assert_eq!(
            graph_path(Path::new("out/x")),
            PathBuf::from("out/x.decompress.onnx")
        );
        let spec = Spec::new(64, 64, 4); // 3 x 32 x 32 f32 = 12288 bytes per sample
        let f32 = Payload::Float(Dtype::F32);
        assert_eq!(samples_per_shard(&spec, f32, 0), 1);
        assert_eq!(
            samples_per_shard(&spec, f32, (HEADER_RESERVE + 3 * 12288) as u64),
            3
        );
        assert_eq!(
            samples_per_shard(
                &spec,
                Payload::Float(Dtype::F16),
                (HEADER_RESERVE + 3 * 12288) as u64
            ),
            6
        );
        let i8 = Payload::Codes {
            code: CodeType::I8,
            entropy: Entropy::None,
        };
        assert_eq!(
            samples_per_shard(&spec, i8, (HEADER_RESERVE + 3 * 12288) as u64),
            12
        );
    }
}
