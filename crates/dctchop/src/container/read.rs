//! Reading a container in bounded memory: a [`ShardReader`] hands out a shard's samples a few
//! at a time, and a [`Loader`] decompresses them in batches across shards.
//!
//! Checks on the way: every zstd frame carries zstd's own checksum, verified as the frame is
//! decoded; the shard's CRC-32 covers all of its payload bytes and is verified when the last
//! sample of the shard has been read (so a damaged float payload is reported at the end of its
//! shard, before anything is committed by `decompress`); float payloads must be finite.

use ndarray::{Array4, ArrayD, Axis, IxDyn};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{Container, Entropy, Header, Payload};
use crate::entropy::ChunkCoder;
use crate::error::{Error, Result};
use crate::quant::{CodeElem, CodeType, Codes};
use crate::spec::Dtype;

/// Samples of one shard as stored: float coefficients (version 1) or codes (version 2), in the
/// spec's compressed layout.
#[derive(Clone, Debug)]
pub enum ShardData {
    Float(ArrayD<f32>),
    Codes(Codes),
}

impl ShardData {
    pub fn samples(&self) -> usize {
        match self {
            ShardData::Float(a) => a.shape()[0],
            ShardData::Codes(c) => c.shape()[0],
        }
    }

    /// Samples `a..b`.
    fn slice(&self, a: usize, b: usize) -> ShardData {
        match self {
            ShardData::Float(x) => {
                ShardData::Float(x.slice_axis(Axis(0), (a..b).into()).to_owned())
            }
            ShardData::Codes(Codes::I8(x)) => {
                ShardData::Codes(Codes::I8(x.slice_axis(Axis(0), (a..b).into()).to_owned()))
            }
            ShardData::Codes(Codes::I16(x)) => {
                ShardData::Codes(Codes::I16(x.slice_axis(Axis(0), (a..b).into()).to_owned()))
            }
        }
    }

    /// The parts, concatenated along the samples (all of one kind).
    pub fn concat(parts: Vec<ShardData>) -> ShardData {
        fn cat<T: Clone>(v: Vec<&ArrayD<T>>) -> ArrayD<T> {
            let views: Vec<_> = v.iter().map(|a| a.view()).collect();
            ndarray::concatenate(Axis(0), &views).expect("parts of one layout")
        }
        match &parts[0] {
            ShardData::Float(_) => ShardData::Float(cat(parts
                .iter()
                .map(|p| match p {
                    ShardData::Float(a) => a,
                    _ => unreachable!("one container holds one kind"),
                })
                .collect())),
            ShardData::Codes(Codes::I8(_)) => ShardData::Codes(Codes::I8(cat(parts
                .iter()
                .map(|p| match p {
                    ShardData::Codes(Codes::I8(a)) => a,
                    _ => unreachable!("one container holds one kind"),
                })
                .collect()))),
            ShardData::Codes(Codes::I16(_)) => ShardData::Codes(Codes::I16(cat(parts
                .iter()
                .map(|p| match p {
                    ShardData::Codes(Codes::I16(a)) => a,
                    _ => unreachable!("one container holds one kind"),
                })
                .collect()))),
        }
    }
}

/// Reads one shard's payload sequentially, a few samples at a time.
pub struct ShardReader {
    path: PathBuf,
    header: Header,
    file: BufReader<File>,
    crc: crc32fast::Hasher,
    /// Samples not yet handed out.
    left: usize,
    /// zstd: the decoder, the next frame, and the decoded frame not yet handed out.
    coder: Option<ChunkCoder>,
    frame: usize,
    decoded: Option<(ShardData, usize)>,
    bytes: Vec<u8>,
}

impl ShardReader {
    /// Open the shard at `path` whose header is `header` (from [`super::read_header`]).
    pub fn open(path: &Path, header: Header) -> Result<ShardReader> {
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        f.seek(SeekFrom::Start(header.data_start))
            .map_err(|e| Error::io(path, e))?;
        let coder = match header.payload {
            Payload::Codes {
                entropy: Entropy::Zstd { level },
                ..
            } => Some(ChunkCoder::new(
                &header.spec.layout(),
                header.spec.channels,
                level,
            )?),
            _ => None,
        };
        Ok(ShardReader {
            path: path.to_path_buf(),
            left: header.samples,
            header,
            file: BufReader::with_capacity(crate::input::READ_BUFFER_BYTES, f),
            crc: crc32fast::Hasher::new(),
            coder,
            frame: 0,
            decoded: None,
            bytes: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Samples not yet read.
    pub fn left(&self) -> usize {
        self.left
    }

    fn read_bytes(&mut self, n: usize) -> Result<()> {
        self.bytes.resize(n, 0);
        self.file
            .read_exact(&mut self.bytes)
            .map_err(|e| Error::corrupt(&self.path, format!("payload ends early: {e}")))?;
        self.crc.update(&self.bytes);
        Ok(())
    }

    /// The next `k` samples (k ≤ [`ShardReader::left`]).
    pub fn take(&mut self, k: usize) -> Result<ShardData> {
        assert!(k <= self.left, "take {k} of {} samples left", self.left);
        let per: usize = self.header.spec.compressed_shape()[1..].iter().product();
        let mut shape = self.header.spec.compressed_shape();
        shape[0] = k;
        let data = match self.header.payload {
            Payload::Float(store) => {
                self.read_bytes(k * per * store.bytes())?;
                let v: Vec<f32> = match store {
                    Dtype::F32 => self
                        .bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .collect(),
                    Dtype::F16 => self
                        .bytes
                        .chunks_exact(2)
                        .map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32())
                        .collect(),
                };
                let bad = v.iter().filter(|x| !x.is_finite()).count();
                if bad > 0 {
                    return Err(Error::corrupt(
                        &self.path,
                        format!("holds {bad} non-finite coefficients (NaN or Inf)"),
                    ));
                }
                ShardData::Float(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("sizes"))
            }
            Payload::Codes {
                code,
                entropy: Entropy::None,
            } => {
                self.read_bytes(k * per * code.bytes())?;
                let codes = match code {
                    CodeType::I8 => Codes::I8(raw_codes::<i8>(&self.bytes, &shape)),
                    CodeType::I16 => Codes::I16(raw_codes::<i16>(&self.bytes, &shape)),
                };
                check_range(&codes, &self.path)?;
                ShardData::Codes(codes)
            }
            Payload::Codes { .. } => self.take_chunked(k)?,
        };
        self.left -= k;
        if self.left == 0 {
            self.finish()?;
        }
        Ok(data)
    }

    fn take_chunked(&mut self, k: usize) -> Result<ShardData> {
        let mut parts = Vec::new();
        let mut have = 0;
        while have < k {
            if self
                .decoded
                .as_ref()
                .is_none_or(|(d, pos)| *pos >= d.samples())
            {
                // The spent frame's buffer takes the next frame (no fresh pages per frame).
                let spent = self.decoded.take().map(|(d, _)| d);
                self.decoded = Some((self.next_frame(spent)?, 0));
            }
            let (d, pos) = self.decoded.as_mut().expect("decoded above");
            let n = (k - have).min(d.samples() - *pos);
            parts.push(d.slice(*pos, *pos + n));
            *pos += n;
            have += n;
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            ShardData::concat(parts)
        })
    }

    fn next_frame(&mut self, spent: Option<ShardData>) -> Result<ShardData> {
        let (n, len) = self.header.chunks[self.frame];
        self.frame += 1;
        self.read_bytes(len as usize)?;
        let mut shape = self.header.spec.compressed_shape();
        shape[0] = n;
        let count: usize = shape.iter().product();
        let coder = self.coder.as_mut().expect("zstd payloads have a coder");
        let Payload::Codes { code, .. } = self.header.payload else {
            unreachable!("chunks only in code payloads")
        };
        fn decode<T: CodeElem>(
            coder: &mut ChunkCoder,
            bytes: &[u8],
            n: usize,
            (count, shape): (usize, &[usize]),
            spent: Option<ArrayD<T>>,
            path: &Path,
        ) -> Result<ArrayD<T>> {
            let mut out = spent
                .map(|a| a.into_raw_vec_and_offset().0)
                .unwrap_or_default();
            out.clear();
            out.resize(count, T::default());
            coder.decode(bytes, n, &mut out, path)?;
            Ok(ArrayD::from_shape_vec(IxDyn(shape), out).expect("sizes"))
        }
        let bytes = std::mem::take(&mut self.bytes);
        let (i8s, i16s) = match spent {
            Some(ShardData::Codes(Codes::I8(a))) => (Some(a), None),
            Some(ShardData::Codes(Codes::I16(a))) => (None, Some(a)),
            _ => (None, None),
        };
        let size = (count, &shape[..]);
        let codes = match code {
            CodeType::I8 => Codes::I8(decode(coder, &bytes, n, size, i8s, &self.path)?),
            CodeType::I16 => Codes::I16(decode(coder, &bytes, n, size, i16s, &self.path)?),
        };
        self.bytes = bytes;
        check_range(&codes, &self.path)?;
        Ok(ShardData::Codes(codes))
    }

    /// After the last sample: the whole payload has been read; check its CRC.
    fn finish(&mut self) -> Result<()> {
        let crc = format!("{:08x}", self.crc.clone().finalize());
        if crc != self.header.crc32 {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "checksum mismatch: the payload has crc32 {crc}, the header says {} (file \
                     corrupted)",
                    self.header.crc32
                ),
            ));
        }
        Ok(())
    }

    /// Read the rest of the payload and check the CRC (and zstd frames), discarding the data.
    pub fn verify(mut self) -> Result<()> {
        while self.left > 0 {
            let k = self.left.min(64);
            self.take(k)?;
        }
        Ok(())
    }
}

fn raw_codes<T: CodeElem>(bytes: &[u8], shape: &[usize]) -> ArrayD<T> {
    let w = T::CODE.bytes();
    let v: Vec<T> = bytes
        .chunks_exact(w)
        .map(|c| T::from_bytes(c[0], if w == 2 { c[1] } else { 0 }))
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("sizes")
}

/// Codes are symmetric (`-max..=max`): the one value beyond, `i8::MIN` or `i16::MIN`, is never
/// written, so it means damage.
fn check_range(codes: &Codes, path: &Path) -> Result<()> {
    // Over the contiguous slice when there is one (a vectorized count), else element-wise.
    fn count<T: Copy + PartialEq>(a: &ArrayD<T>, min: T) -> usize {
        match a.as_slice_memory_order() {
            Some(v) => v.iter().map(|&x| usize::from(x == min)).sum(),
            None => a.iter().filter(|&&x| x == min).count(),
        }
    }
    let (bad, code) = match codes {
        Codes::I8(a) => (count(a, i8::MIN), CodeType::I8),
        Codes::I16(a) => (count(a, i16::MIN), CodeType::I16),
    };
    if bad > 0 {
        return Err(Error::corrupt(
            path,
            format!(
                "holds {bad} codes out of range: {code} codes are -{m}..={m}, the file has -{}",
                code.max() + 1,
                m = code.max()
            ),
        ));
    }
    Ok(())
}

/// Iterator over a container's samples, decompressed in batches by one compiled
/// [`crate::Codec`]; memory is one batch (plus one chunk of codes).
pub struct Loader {
    stored: StoredBatches,
    codec: crate::Codec,
    done: bool,
}

/// The first stage of a [`Loader`]: a container's batches as stored (read, CRC-checked and,
/// for zstd payloads, decoded to codes), not yet decompressed. Split off with
/// [`Loader::into_stages`] so that a thread can read and decode the next batch while another
/// decompresses this one.
pub struct StoredBatches {
    container: Container,
    batch: usize,
    shard: usize,
    reader: Option<ShardReader>,
}

impl Loader {
    pub(super) fn new(
        container: Container,
        batch: usize,
        opts: &crate::EngineOptions,
    ) -> Result<Loader> {
        if batch == 0 {
            return Err(Error::invalid_option("batch", 0, "an integer >= 1"));
        }
        // A graph engine runs graphs of a fixed batch: no larger than the data.
        let spec = container
            .header
            .spec
            .clone()
            .with_batch(batch.min(container.len()).max(1));
        let codec = crate::Codec::new(&spec, opts)?;
        Ok(Loader {
            stored: StoredBatches {
                container,
                batch,
                shard: 0,
                reader: None,
            },
            codec,
            done: false,
        })
    }

    /// The codec the batches run through (its plan's spec has the graph batch: the requested
    /// batch, capped at the sample count).
    pub fn codec(&self) -> &crate::Codec {
        &self.codec
    }

    /// The two stages, to run on two threads: `stored.next_stored()` on one, and
    /// [`Loader::decompress_stored`] with the codec on the other.
    pub fn into_stages(self) -> (StoredBatches, crate::Codec) {
        (self.stored, self.codec)
    }

    /// Decompress one stored batch, into `spare` when it has the batch's shape (a batch handed
    /// back by the caller: no fresh allocation, no page faults), else into a new array.
    pub fn decompress_stored(
        codec: &mut crate::Codec,
        d: ShardData,
        spare: Option<Array4<f32>>,
    ) -> Result<Array4<f32>> {
        match d {
            ShardData::Float(y) => codec.decompress(y.view()),
            ShardData::Codes(c) => {
                let n = c.view().shape()[0];
                match spare {
                    Some(mut out) if out.shape()[0] == n && out.is_standard_layout() => codec
                        .decompress_codes_into(c.view(), out.view_mut())
                        .map(|()| out),
                    _ => codec.decompress_codes(c.view()),
                }
            }
        }
    }
}

impl StoredBatches {
    /// The next up to `batch` stored samples, across shard boundaries; `None` after the last.
    pub fn next_stored(&mut self) -> Result<Option<ShardData>> {
        let mut parts = Vec::new();
        let mut have = 0;
        while have < self.batch {
            if self.reader.as_ref().is_none_or(|r| r.left() == 0) {
                if self.shard >= self.container.shards.len() {
                    break;
                }
                let i = self.shard;
                self.reader = Some(ShardReader::open(
                    &self.container.shards[i],
                    self.container.headers[i].clone(),
                )?);
                self.shard += 1;
                continue;
            }
            let r = self.reader.as_mut().expect("opened above");
            let k = (self.batch - have).min(r.left());
            parts.push(r.take(k)?);
            have += k;
        }
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(ShardData::concat(parts)),
        })
    }
}

impl Loader {
    /// The next batch, decompressed into `spare` when it has the batch's shape (a batch handed
    /// back by the caller: no fresh allocation, no page faults), else into a new array.
    pub fn next_reusing(&mut self, spare: Option<Array4<f32>>) -> Option<Result<Array4<f32>>> {
        if self.done {
            return None;
        }
        let codec = &mut self.codec;
        let r = self.stored.next_stored().and_then(|d| {
            d.map(|d| Loader::decompress_stored(codec, d, spare))
                .transpose()
        });
        match r {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // Stop after an error.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Array4<f32>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_reusing(None)
    }
}
