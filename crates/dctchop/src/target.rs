//! Export profiles for the platforms the paper targets (§2.1, §3.5, §4.2.2) plus CPU and CUDA.
//!
//! A profile supplies defaults for the spec fields the user did not set (tile, serialize, dtype,
//! variant) and describes the platform's per-unit memory, so [`estimate`] can report the largest
//! constant and the largest tensor of each graph in bytes and warn when they exceed it. The
//! numbers come from the paper's platform descriptions; they are estimates for a compiler that
//! maps whole tensors onto units, not a model of any vendor compiler.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

use crate::plan::{Plan, Program, Step};
use crate::spec::{Dtype, Spec, Tile, Variant};

/// A platform profile name (`--target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Cpu,
    Cuda,
    Cs2,
    Sn30,
    Groq,
    Ipu,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::Cpu,
        Target::Cuda,
        Target::Cs2,
        Target::Sn30,
        Target::Groq,
        Target::Ipu,
    ];

    /// The profile's defaults and limits.
    pub fn profile(self) -> Profile {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        // What every profile starts from: the CPU defaults, no limits.
        let base = Profile {
            target: self,
            tile: Tile::Auto,
            dtype: Dtype::F32,
            variant: Variant::Chop,
            fit_serialize: false,
            unit: None,
            device_memory: None,
            max_matmul_dim: None,
            reason: "",
        };
        match self {
            Target::Cpu => Profile {
                reason:
                    "tiled O(pixels) form that tract/ONNX Runtime turn into cache-sized GEMMs; \
                         f32 because CPUs emulate f16 GEMMs",
                ..base
            },
            Target::Cuda => Profile {
                reason: "GPUs run every form; the tiled form moves the fewest bytes; f32 keeps \
                         results equal to the CPU's (pass --dtype f16 to halve the traffic)",
                ..base
            },
            Target::Cs2 => Profile {
                tile: Tile::Size(0), // block-direct: the block size, resolved in `apply`
                dtype: Dtype::F16,
                unit: Some(Unit {
                    name: "PE",
                    bytes: 48 * KIB,
                }),
                device_memory: Some(40 * 1024 * MIB),
                reason: "850,000 PEs of 48 KB each: block-direct matrices (b x CF) fit any PE and \
                         the dataflow compiler spreads the data; CS-2 computes FP16",
                ..base
            },
            Target::Sn30 => Profile {
                fit_serialize: true,
                unit: Some(Unit {
                    name: "PMU",
                    bytes: 512 * KIB,
                }),
                reason: "a 0.5 MB PMU must hold one channel of a chunk (the paper's 362x362 f32 \
                         limit), so serialize is raised until it does; SN30 has BF16, not FP16, \
                         so f32",
                ..base
            },
            Target::Groq => Profile {
                dtype: Dtype::F16,
                device_memory: Some(230 * MIB),
                max_matmul_dim: Some(320),
                reason: "320x320 matmul units and 230 MB of on-chip memory for everything: small \
                         tiles keep every matrix under 320, FP16 halves the footprint",
                ..base
            },
            Target::Ipu => Profile {
                dtype: Dtype::F16,
                variant: Variant::Triangle,
                unit: Some(Unit {
                    name: "tile",
                    bytes: 900 * MIB / 1472,
                }),
                device_memory: Some(900 * MIB),
                reason: "the IPU supports gather, so the triangle layout (the paper's SG \
                         optimization, 1.3-1.75x higher ratio); 1472 tiles of ~624 KB; FP16",
                ..base
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Cpu => "cpu",
            Target::Cuda => "cuda",
            Target::Cs2 => "cs2",
            Target::Sn30 => "sn30",
            Target::Groq => "groq",
            Target::Ipu => "ipu",
        })
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.to_string() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown target '{s}': allowed are cpu, cuda, cs2, sn30, groq, ipu")
            })
    }
}

/// A memory unit of a platform (the smallest piece a tensor or matrix must fit into).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Unit {
    pub name: &'static str,
    pub bytes: u64,
}

/// Defaults and limits of one target.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Profile {
    pub target: Target,
    pub tile: Tile,
    pub dtype: Dtype,
    pub variant: Variant,
    /// Raise `serialize` until one channel of a chunk fits a unit.
    pub fit_serialize: bool,
    pub unit: Option<Unit>,
    /// On-chip memory that must hold a graph's input, output, largest intermediate and constants.
    pub device_memory: Option<u64>,
    /// Largest matrix dimension the matmul units take.
    pub max_matmul_dim: Option<usize>,
    pub reason: &'static str,
}

/// The spec fields a user may leave to the profile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub tile: Option<Tile>,
    pub serialize: Option<usize>,
    pub dtype: Option<Dtype>,
    pub variant: Option<Variant>,
}

impl Profile {
    /// Fill the fields the user did not set. `spec` holds the user's values for the rest
    /// (sizes, cf, block, batch, channels); its tile/serialize/dtype/variant are overwritten.
    pub fn apply(&self, mut spec: Spec, user: Overrides) -> Spec {
        spec.variant = user.variant.unwrap_or(self.variant);
        spec.dtype = user.dtype.unwrap_or(self.dtype);
        spec.tile = user.tile.unwrap_or(match self.tile {
            Tile::Size(0) => Tile::Size(spec.block),
            t => t,
        });
        spec.serialize = match user.serialize {
            Some(s) => s,
            None if self.fit_serialize => self.fitting_serialize(&spec),
            None => 1,
        };
        spec
    }

    /// The smallest serialize factor (dividing both block counts) whose chunk holds one channel
    /// within a unit; 1 if none does (the estimate then warns).
    fn fitting_serialize(&self, spec: &Spec) -> usize {
        let Some(unit) = self.unit else { return 1 };
        let (nbh, nbw) = spec.blocks();
        let (hp, wp) = spec.padded();
        let elem = elem_bytes(spec.dtype);
        (1..=nbh.min(nbw))
            .filter(|s| nbh % s == 0 && nbw % s == 0)
            .find(|s| ((hp / s) * (wp / s)) as u64 * elem <= unit.bytes)
            .unwrap_or(1)
    }
}

fn elem_bytes(d: Dtype) -> u64 {
    match d {
        Dtype::F32 => 4,
        Dtype::F16 => 2,
    }
}

/// Memory estimate of one graph.
#[derive(Clone, Debug, Serialize)]
pub struct GraphEstimate {
    pub largest_constant_bytes: u64,
    pub largest_tensor_bytes: u64,
    /// Largest tensor of one sample and channel (what a unit must hold when the compiler maps
    /// one channel per unit, as the paper describes for SN30).
    pub largest_channel_bytes: u64,
    pub largest_matmul_dim: usize,
    /// Input + output + largest intermediate + constants.
    pub footprint_bytes: u64,
}

/// A target's profile checked against a plan.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub target: Target,
    pub reason: &'static str,
    pub unit: Option<Unit>,
    pub device_memory_bytes: Option<u64>,
    pub max_matmul_dim: Option<usize>,
    pub compress: GraphEstimate,
    pub decompress: GraphEstimate,
    pub warnings: Vec<String>,
}

fn graph_estimate(p: &Program, dtype: Dtype, per_channel_div: u64) -> GraphEstimate {
    let elem = elem_bytes(dtype);
    let (c, t) = p.largest_constant_and_tensor();
    let shapes = p.shapes();
    let size = |s: &Vec<usize>| s.iter().map(|&d| d as u64).product::<u64>() * elem;
    let io = size(&shapes[0]) + size(shapes.last().expect("non-empty"));
    let largest_matmul_dim = p
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::MatMulRight { w } | Step::MatMulLeft { w } => Some(w.nrows().max(w.ncols())),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    GraphEstimate {
        largest_constant_bytes: c * elem,
        largest_tensor_bytes: t * elem,
        largest_channel_bytes: t * elem / per_channel_div,
        largest_matmul_dim,
        footprint_bytes: io + t * elem + p.constant_bytes(elem),
    }
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Check a plan against `target`: sizes of each graph and warnings where a profile limit is
/// exceeded (with what to change).
pub fn estimate(plan: &Plan, target: Target) -> Estimate {
    let prof = target.profile();
    let chunk = &plan.chunk;
    let per_channel = (chunk.batch * chunk.channels) as u64;
    let compress = graph_estimate(&plan.compress, chunk.dtype, per_channel);
    let decompress = graph_estimate(&plan.decompress, chunk.dtype, per_channel);
    let mut warnings = Vec::new();
    for (name, g) in [("compress", &compress), ("decompress", &decompress)] {
        if let Some(u) = prof.unit {
            if g.largest_constant_bytes > u.bytes {
                warnings.push(format!(
                    "{target} {name}: the largest constant ({}) exceeds one {} ({}); use a \
                     smaller --tile (e.g. {})",
                    mib(g.largest_constant_bytes),
                    u.name,
                    mib(u.bytes),
                    chunk.block
                ));
            }
            if g.largest_channel_bytes > u.bytes {
                warnings.push(format!(
                    "{target} {name}: one channel of the largest tensor ({}) exceeds one {} \
                     ({}); raise --serialize",
                    mib(g.largest_channel_bytes),
                    u.name,
                    mib(u.bytes)
                ));
            }
        }
        if let Some(m) = prof.device_memory {
            if g.footprint_bytes > m {
                warnings.push(format!(
                    "{target} {name}: input, output, largest intermediate and constants need {}, \
                     more than the {} on chip; lower --batch or raise --serialize",
                    mib(g.footprint_bytes),
                    mib(m)
                ));
            }
        }
        if let Some(d) = prof.max_matmul_dim {
            if g.largest_matmul_dim > d {
                warnings.push(format!(
                    "{target} {name}: a {}-wide matrix exceeds the {d}x{d} matmul unit; use \
                     --tile auto or a tile <= {}",
                    g.largest_matmul_dim,
                    d / chunk.block * chunk.block
                ));
            }
        }
    }
    if target == Target::Cs2 || target == Target::Groq || target == Target::Ipu {
        if plan.spec.dtype == Dtype::F32 {
            warnings.push(format!(
                "{target}: f32 graphs run, but the platform's 16-bit format is FP16 (--dtype f16 \
                 halves memory and traffic)"
            ));
        }
    } else if target == Target::Sn30 && plan.spec.dtype == Dtype::F16 {
        warnings.push(
            "sn30: the SN30 computes BF16, not FP16; f16 graphs may be converted or rejected by \
             its compiler (use --dtype f32)"
                .to_string(),
        );
    }
    Estimate {
        target,
        reason: prof.reason,
        unit: prof.unit,
        device_memory_bytes: prof.device_memory,
        max_matmul_dim: prof.max_matmul_dim,
        compress,
        decompress,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sn30_serializes_until_a_channel_fits_a_pmu() {
        // 512x512 f32: one channel is 1 MiB > 0.5 MB; s = 2 gives 256x256 = 256 KiB.
        let base = Spec::new(512, 512, 4).with_batch(100);
        let spec = Target::Sn30.profile().apply(base, Overrides::default());
        assert_eq!(spec.serialize, 2);
        assert_eq!(spec.dtype, Dtype::F32);
        let plan = Plan::new(&spec).unwrap();
        let est = estimate(&plan, Target::Sn30);
        assert!(est.warnings.is_empty(), "{:?}", est.warnings);
        // 360x360 f32 (506 KiB) still fits a PMU: no serialization.
        let s = Target::Sn30
            .profile()
            .apply(Spec::new(360, 360, 4), Overrides::default());
        assert_eq!(s.serialize, 1);
    }

    #[test]
    fn user_values_win_and_warnings_name_the_fix() {
        let user = Overrides {
            tile: Some(Tile::Full),
            serialize: Some(1),
            ..Default::default()
        };
        let spec = Target::Sn30.profile().apply(Spec::new(1024, 1024, 4), user);
        assert_eq!((spec.tile, spec.serialize), (Tile::Full, 1));
        let est = estimate(&Plan::new(&spec).unwrap(), Target::Sn30);
        let all = est.warnings.join("\n");
        assert!(all.contains("--tile"), "{all}");
        assert!(all.contains("--serialize"), "{all}");
    }

    #[test]
    fn profiles_set_their_defaults() {
        let base = Spec::new(256, 256, 4);
        let ipu = Target::Ipu
            .profile()
            .apply(base.clone(), Overrides::default());
        assert_eq!((ipu.variant, ipu.dtype), (Variant::Triangle, Dtype::F16));
        let cs2 = Target::Cs2
            .profile()
            .apply(base.clone(), Overrides::default());
        assert_eq!(cs2.tile, Tile::Size(8));
        let groq = Target::Groq.profile().apply(base, Overrides::default());
        let est = estimate(&Plan::new(&groq).unwrap(), Target::Groq);
        assert!(est.compress.largest_matmul_dim <= 320);
        assert!(est.warnings.is_empty(), "{:?}", est.warnings);
        // The paper's Groq failure: 512x512, batch 100 does not fit 230 MB.
        let big = Target::Groq
            .profile()
            .apply(Spec::new(512, 512, 4).with_batch(100), Overrides::default());
        let est = estimate(&Plan::new(&big).unwrap(), Target::Groq);
        assert!(
            est.warnings.iter().any(|w| w.contains("on chip")),
            "{:?}",
            est.warnings
        );
    }

    #[test]
    fn parse() {
        for t in Target::ALL {
            assert_eq!(t.to_string().parse::<Target>().unwrap(), t);
        }
        assert!("tpu".parse::<Target>().unwrap_err().contains("allowed"));
    }
}
