//! The compressed container: DCT+Chop coefficients in safetensors files, written in shards.
//!
//! A container `OUT` is the shards `OUT.00000.safetensors`, `OUT.00001.safetensors`, … Each shard
//! is a plain safetensors file (8-byte little-endian header length, JSON header, raw bytes) with
//! one tensor, `coefficients` (F32 or F16, little-endian, C order), holding the compressed layout
//! of that shard's samples: `[n, C, nbh·CF, nbw·CF]` (chop) or `[n, C, K]` (triangle). The
//! header's `__metadata__` (all strings) describes the whole dataset and the shard; see
//! [`Header`] and the README. Every shard carries a CRC-32 of its coefficient bytes, checked on
//! read.
//!
//! Writing ([`Writer`]) streams: coefficients are appended to a payload temporary per shard as
//! they are produced, so memory holds one batch only. At [`Writer::finish`] every shard gets its
//! header (which needs the dataset's value range, known only at the end) and all shards are
//! renamed into place together; on any error, or if the writer is dropped unfinished, every
//! temporary is removed and no output appears.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use safetensors::tensor::{Metadata, TensorInfo};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::SampleType;
use crate::output::{check_writable, Commit, CreatedDirs, TempFile};
use crate::spec::{Dtype, Spec};

pub const FORMAT: &str = "dctchop-container";
pub const FORMAT_VERSION: &str = "1";
pub const TENSOR: &str = "coefficients";
/// Room kept in each shard for its JSON header when sizing shards (headers are ~1.5 KB).
pub const HEADER_RESERVE: usize = 16 * 1024;

/// Element type the coefficients are stored in: [`Dtype::F32`] or [`Dtype::F16`].
pub type Store = Dtype;

fn st_dtype(store: Store) -> safetensors::Dtype {
    match store {
        Dtype::F32 => safetensors::Dtype::F32,
        Dtype::F16 => safetensors::Dtype::F16,
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

/// A shard's metadata, parsed and checked.
#[derive(Clone, Debug)]
pub struct Header {
    pub spec: Spec,
    pub info: DatasetInfo,
    pub store: Store,
    pub shard_index: usize,
    pub shard_count: usize,
    pub first_sample: usize,
    pub samples: usize,
    /// Original bytes (N·C·H·W · size of the original dtype) / coefficient bytes of all shards.
    pub stored_ratio: f64,
    /// CRC-32 (IEEE) of the shard's coefficient bytes, 8 lower-case hex digits.
    pub crc32: String,
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

/// Whether a path names a container (a `.safetensors` file, or a stem whose shard 0 exists).
pub fn looks_like_container(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors") || shard_path(path, 0).is_file()
}

/// Samples per shard so that a shard file stays within `shard_bytes` (at least 1 sample).
pub fn samples_per_shard(spec: &Spec, store: Store, shard_bytes: u64) -> usize {
    let per = per_sample_bytes(spec, store) as u64;
    (shard_bytes.saturating_sub(HEADER_RESERVE as u64) / per).max(1) as usize
}

fn per_sample_bytes(spec: &Spec, store: Store) -> usize {
    spec.compressed_shape()[1..].iter().product::<usize>() * store.bytes()
}

/// Streams coefficients into shards. See the module documentation.
pub struct Writer {
    stem: PathBuf,
    spec: Spec,
    store: Store,
    total: usize,
    per_shard: usize,
    shard_count: usize,
    force: bool,
    /// Payload temporaries of finished and current shards: (file, crc, samples).
    payloads: Vec<(TempFile, String, usize)>,
    /// The open payload's running CRC and sample count.
    current: Option<(crc32fast::Hasher, usize)>,
    written: usize,
    /// The output directory, removed again if this writer created it and fails.
    created: CreatedDirs,
}

impl Writer {
    /// Start a container of `total` samples. Refuses to overwrite existing shards (and the
    /// extra files named in `also_check`) unless `force`.
    pub fn create(
        stem: &Path,
        spec: &Spec,
        store: Store,
        total: usize,
        shard_bytes: u64,
        force: bool,
        also_check: &[PathBuf],
    ) -> Result<Writer> {
        let per_shard = samples_per_shard(spec, store, shard_bytes);
        let shard_count = total.div_ceil(per_shard).max(1);
        for p in (0..shard_count)
            .map(|i| shard_path(stem, i))
            .chain(also_check.iter().cloned())
        {
            check_writable(&p, force)?;
        }
        let dir = stem.parent().unwrap_or(Path::new(""));
        let created = CreatedDirs::create(dir)?;
        Ok(Writer {
            stem: stem.to_path_buf(),
            spec: spec.clone(),
            store,
            total,
            per_shard,
            shard_count,
            force,
            payloads: Vec::new(),
            current: None,
            written: 0,
            created,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shard_count
    }

    /// Append `[k, ...]` coefficients (any k), in the spec's compressed layout.
    pub fn push(&mut self, coeffs: ArrayViewD<'_, f32>) -> Result<()> {
        let k = coeffs.shape()[0];
        if self.written + k > self.total || coeffs.shape()[1..] != self.spec.compressed_shape()[1..]
        {
            let mut expected = self.spec.compressed_shape();
            expected[0] = self.total - self.written;
            return Err(Error::Shape {
                what: format!(
                    "container writer: coefficients after {} of {} samples",
                    self.written, self.total
                ),
                expected,
                got: coeffs.shape().to_vec(),
            });
        }
        let mut bytes = Vec::with_capacity(per_sample_bytes(&self.spec, self.store));
        for sample in coeffs.axis_iter(Axis(0)) {
            if self.current.is_none() {
                let i = self.payloads.len();
                let tmp = TempFile::create(&shard_path(&self.stem, i))?;
                self.payloads.push((tmp, String::new(), 0));
                self.current = Some((Default::default(), 0));
            }
            bytes.clear();
            match self.store {
                Dtype::F32 => sample.iter().for_each(|v| bytes.extend(v.to_le_bytes())),
                Dtype::F16 => sample
                    .iter()
                    .for_each(|v| bytes.extend(half::f16::from_f32(*v).to_le_bytes())),
            }
            let (h, n) = self.current.as_mut().expect("opened above");
            let (tmp, _, _) = self.payloads.last_mut().expect("pushed");
            tmp.write_all(&bytes)?;
            h.update(&bytes);
            *n += 1;
            self.written += 1;
            if *n == self.per_shard {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((h, n)) = self.current.take() {
            let last = self.payloads.last_mut().expect("current has a payload");
            last.0.close()?;
            last.1 = format!("{:08x}", h.finalize());
            last.2 = n;
        }
        Ok(())
    }

    /// Write every shard's header and payload, then rename all shards into place (plus the
    /// `extra` files, e.g. the decompress graph). Returns the shard paths.
    pub fn finish(
        mut self,
        info: &DatasetInfo,
        extra: &[(PathBuf, Vec<u8>)],
    ) -> Result<Vec<PathBuf>> {
        self.close_current()?;
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
        let payload_bytes: u64 = (self.total * per_sample_bytes(&self.spec, self.store)) as u64;
        let original_bytes: u64 =
            info.shape.iter().product::<usize>() as u64 * info.dtype.bytes() as u64;
        let stored_ratio = original_bytes as f64 / payload_bytes as f64;
        let mut first = 0;
        let mut shards = Vec::new();
        let mut commit = Commit::new(self.force);
        let payloads = std::mem::take(&mut self.payloads);
        for (i, (payload, crc, n)) in payloads.into_iter().enumerate() {
            let path = shard_path(&self.stem, i);
            let meta = self.metadata(info, i, first, n, stored_ratio, &crc);
            let mut shape = self.spec.compressed_shape();
            shape[0] = n;
            let len = n * per_sample_bytes(&self.spec, self.store);
            let header = header_bytes(meta, self.store, shape, len);
            let out = commit.add(&path)?;
            out.write_all(&(header.len() as u64).to_le_bytes())?;
            out.write_all(&header)?;
            let mut src =
                File::open(payload.temp_path()).map_err(|e| Error::io(payload.target(), e))?;
            std::io::copy(&mut src, out.file()).map_err(|e| Error::io(&path, e))?;
            drop(payload); // removes the payload temporary
            first += n;
            shards.push(path);
        }
        for (path, bytes) in extra {
            commit.add_bytes(path, bytes)?;
        }
        commit.finish()?;
        self.created.keep();
        Ok(shards)
    }

    fn metadata(
        &self,
        info: &DatasetInfo,
        shard: usize,
        first: usize,
        n: usize,
        stored_ratio: f64,
        crc: &str,
    ) -> HashMap<String, String> {
        let s = |v: &str| v.to_string();
        let spec_json = serde_json::to_string(&self.spec).expect("spec serializes");
        HashMap::from([
            (s("format"), s(FORMAT)),
            (s("format_version"), s(FORMAT_VERSION)),
            (
                s("producer"),
                format!("dctchop {}", env!("CARGO_PKG_VERSION")),
            ),
            (s("spec"), spec_json),
            (s("layout"), s(self.spec.layout_name())),
            (s("store_dtype"), self.store.to_string()),
            (s("original_dtype"), info.dtype.to_string()),
            (
                s("original_shape"),
                serde_json::to_string(&info.shape).expect("json"),
            ),
            (s("value_min"), format!("{:?}", info.min)),
            (s("value_max"), format!("{:?}", info.max)),
            (
                s("coefficient_ratio"),
                format!("{:?}", self.spec.compression_ratio()),
            ),
            (s("stored_ratio"), format!("{stored_ratio:?}")),
            (s("shard_index"), shard.to_string()),
            (s("shard_count"), self.shard_count.to_string()),
            (s("shard_first_sample"), first.to_string()),
            (s("shard_samples"), n.to_string()),
            (s("checksum"), format!("crc32:{crc}")),
        ])
    }
}

fn header_bytes(
    meta: HashMap<String, String>,
    store: Store,
    shape: Vec<usize>,
    len: usize,
) -> Vec<u8> {
    let info = TensorInfo {
        dtype: st_dtype(store),
        shape,
        data_offsets: (0, len),
    };
    // Keys sorted (serde_json's map is ordered), so equal inputs give byte-identical files.
    let sorted: std::collections::BTreeMap<String, String> = meta.into_iter().collect();
    let v = serde_json::json!({ "__metadata__": sorted, TENSOR: info });
    let mut h = serde_json::to_vec(&v).expect("string maps serialize");
    debug_assert!(
        serde_json::from_slice::<Metadata>(&h).is_ok(),
        "a header safetensors accepts"
    );
    // Pad with spaces to a multiple of 8 so the payload is aligned (as safetensors does).
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    h
}

/// An opened container: the stem, its shards and shard 0's header.
#[derive(Clone, Debug)]
pub struct Container {
    pub stem: PathBuf,
    pub shards: Vec<PathBuf>,
    pub header: Header,
}

/// Open a container by its stem or any of its shard paths; reads every shard's header (not the
/// payloads) and checks they agree.
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
    let mut shards = vec![first];
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
            || h.shard_index != i
            || h.shard_first_sample_mismatch(next_first)
        {
            return Err(Error::corrupt(
                &p,
                "metadata does not match shard 00000 (spec, dataset or shard numbering differ)",
            ));
        }
        next_first += h.samples;
        shards.push(p);
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
    Ok(Container {
        stem,
        shards,
        header,
    })
}

impl Header {
    fn shard_first_sample_mismatch(&self, expected: usize) -> bool {
        self.first_sample != expected
    }
}

fn read_prefix(path: &Path) -> Result<(Vec<u8>, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
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
    // The header alone (the payload is checked by `Container::read_shard`).
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
    let info = meta
        .info(TENSOR)
        .ok_or_else(|| Error::corrupt(path, format!("has no tensor named '{TENSOR}'")))?
        .clone();
    let raw = meta.metadata().clone().unwrap_or_default();
    let h = parse_header(path, raw)?;
    let mut want = h.spec.compressed_shape();
    want[0] = h.samples;
    let st = st_dtype(h.store);
    if info.shape != want || info.dtype != st {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata/spec mismatch: tensor '{TENSOR}' is {:?} {:?}, the spec's layout {} \
                 with {} samples needs {:?} {:?}",
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
        v.parse().map_err(|_| bad(k, v, "a number"))
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
    if get("format_version")? != FORMAT_VERSION {
        return Err(Error::unsupported(
            path,
            format!(
                "metadata field 'format_version' = '{}': this dctchop reads version {FORMAT_VERSION}",
                get("format_version")?
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
    let store: Store = get("store_dtype")?.parse().map_err(|e: String| {
        bad(
            "store_dtype",
            get("store_dtype").map(|s| s.as_str()).unwrap_or(""),
            &e,
        )
    })?;
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
    let h = Header {
        info: DatasetInfo {
            dtype,
            shape,
            min: float("value_min")?,
            max: float("value_max")?,
        },
        store,
        shard_index: num("shard_index")?,
        shard_count: num("shard_count")?,
        first_sample: num("shard_first_sample")?,
        samples: num("shard_samples")?,
        stored_ratio: float("stored_ratio")?,
        crc32: crc,
        spec,
        raw: HashMap::new(),
    };
    if h.samples == 0 || h.shard_count == 0 || h.shard_index >= h.shard_count {
        return Err(Error::corrupt(
            path,
            format!(
                "metadata fields shard_index {} / shard_count {} / shard_samples {} are inconsistent",
                h.shard_index, h.shard_count, h.samples
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

    /// Read shard `i`'s coefficients as f32 `[n, ...]`, verifying its checksum.
    pub fn read_shard(&self, i: usize) -> Result<ArrayD<f32>> {
        let path = &self.shards[i];
        let h = read_header(path)?;
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::corrupt(path, format!("not a valid safetensors file: {e}")))?;
        let t = st
            .tensor(TENSOR)
            .map_err(|e| Error::corrupt(path, format!("tensor '{TENSOR}': {e}")))?;
        let crc = format!("{:08x}", crc32fast::hash(t.data()));
        if crc != h.crc32 {
            return Err(Error::corrupt(
                path,
                format!(
                    "checksum mismatch: the coefficients have crc32 {crc}, the header says {} \
                     (file corrupted)",
                    h.crc32
                ),
            ));
        }
        let data: Vec<f32> = match h.store {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
            Dtype::F16 => t
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32())
                .collect(),
        };
        Ok(ArrayD::from_shape_vec(IxDyn(t.shape()), data).expect("safetensors checked the size"))
    }

    /// A loader yielding decompressed `[≤batch, C, H, W]` batches in order, over all shards.
    pub fn loader(&self, batch: usize, opts: &crate::EngineOptions) -> Result<Loader> {
        if batch == 0 {
            return Err(Error::invalid_option("batch", 0, "an integer >= 1"));
        }
        let spec = self.header.spec.clone().with_batch(batch);
        let codec = crate::Codec::new(&spec, opts)?;
        Ok(Loader {
            container: self.clone(),
            codec,
            batch,
            shard: 0,
            pending: None,
            pos: 0,
        })
    }
}

/// Iterator over a container's samples, decompressed in batches by one compiled [`crate::Codec`].
pub struct Loader {
    container: Container,
    codec: crate::Codec,
    batch: usize,
    shard: usize,
    pending: Option<ArrayD<f32>>,
    pos: usize,
}

impl Loader {
    fn next_coeffs(&mut self) -> Result<Option<ArrayD<f32>>> {
        let mut parts: Vec<ArrayD<f32>> = Vec::new();
        let mut have = 0;
        while have < self.batch {
            let exhausted = self
                .pending
                .as_ref()
                .is_none_or(|p| self.pos >= p.shape()[0]);
            if exhausted {
                if self.shard >= self.container.shards.len() {
                    break;
                }
                self.pending = Some(self.container.read_shard(self.shard)?);
                self.shard += 1;
                self.pos = 0;
                continue;
            }
            let p = self.pending.as_ref().expect("checked");
            let take = (self.batch - have).min(p.shape()[0] - self.pos);
            parts.push(
                p.slice_axis(Axis(0), (self.pos..self.pos + take).into())
                    .to_owned(),
            );
            self.pos += take;
            have += take;
        }
        if parts.is_empty() {
            return Ok(None);
        }
        if parts.len() == 1 {
            return Ok(parts.pop());
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        Ok(Some(
            ndarray::concatenate(Axis(0), &views).expect("parts of one layout"),
        ))
    }
}

impl Iterator for Loader {
    type Item = Result<ndarray::Array4<f32>>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_coeffs() {
            Ok(Some(y)) => Some(self.codec.decompress(y.view())),
            Ok(None) => None,
            Err(e) => {
                // Stop after an error.
                self.shard = self.container.shards.len();
                self.pending = None;
                Some(Err(e))
            }
        }
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
        assert_eq!(samples_per_shard(&spec, Dtype::F32, 0), 1);
        assert_eq!(
            samples_per_shard(&spec, Dtype::F32, (HEADER_RESERVE + 3 * 12288) as u64),
            3
        );
        assert_eq!(
            samples_per_shard(&spec, Dtype::F16, (HEADER_RESERVE + 3 * 12288) as u64),
            6
        );
    }
}
