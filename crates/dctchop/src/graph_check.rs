//! Engine-agnostic validation of an ONNX graph before any engine sees it: `dctchop run` and
//! `dctchop inspect` check every graph here, so a crafted file is refused with a one-line error
//! instead of panicking or aborting inside tract or ONNX Runtime (tract panics on an
//! out-of-range Gather index; a Gather or Reshape can declare tensors of any size).
//!
//! The check walks the nodes in order and infers every tensor's element type and static shape
//! from the graph input and the constants: MatMul (numpy rules), Gather (constant indices, each
//! within the gathered axis), Reshape (a constant target with `0`/`-1` resolved; the element
//! count kept) and Cast. It then requires the declared shapes (graph output, value infos) to
//! equal the inferred ones, and the memory a run needs to fit the [`Budget`]: the file, its
//! constants (engines keep a copy), the input, the output and every intermediate tensor (all
//! counted, as an engine may keep them all alive). Sizes use checked arithmetic; an overflow is
//! reported as such.

use std::collections::HashMap;
use std::path::Path;

use onnx_export::{AttrValue, DataType, Model, Node};

use crate::budget::{self, Budget};
use crate::error::{Error, Result};

/// The ops the check knows (and so the ops `run` accepts).
pub const KNOWN_OPS: [&str; 4] = ["MatMul", "Gather", "Reshape", "Cast"];

/// What a checked graph needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Bytes of all constants.
    pub constant_bytes: u64,
    /// Bytes of the input, the output and every intermediate tensor.
    pub tensor_bytes: u64,
    /// What a run is estimated to need: `file_bytes` + 2 × constants + tensors.
    pub run_bytes: u64,
}

#[derive(Clone, Debug)]
struct Value {
    dtype: DataType,
    shape: Vec<usize>,
}

fn label(n: &Node, i: usize) -> String {
    if n.name.is_empty() {
        format!("node #{i} ({})", n.op_type)
    } else {
        format!("node '{}' ({})", n.name, n.op_type)
    }
}

fn attr_int(n: &Node, name: &str) -> Option<i64> {
    n.attributes.iter().find_map(|a| match (&a.name, &a.value) {
        (k, AttrValue::Int(v)) if k == name => Some(*v),
        _ => None,
    })
}

fn is_float(d: DataType) -> bool {
    matches!(
        d,
        DataType::F32 | DataType::F16 | DataType::BF16 | DataType::F64
    )
}

fn dims_to_shape(dims: &[i64]) -> Option<Vec<usize>> {
    dims.iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
        .collect()
}

/// Check `model` (read from `path`, `file_bytes` long) as described in the module docs, against
/// `budget` when given.
pub fn check(
    model: &Model,
    path: &Path,
    file_bytes: u64,
    budget: Option<Budget>,
) -> Result<Checked> {
    let g = &model.graph;
    let bad = |m: String| Error::corrupt(path, m);
    if let Some(n) = g
        .nodes
        .iter()
        .find(|n| !KNOWN_OPS.contains(&n.op_type.as_str()))
    {
        return Err(Error::unsupported(
            path,
            format!(
                "op {} is not one dctchop can check before running it (allowed: {})",
                n.op_type,
                KNOWN_OPS.join(", ")
            ),
        ));
    }
    let mut values: HashMap<&str, Value> = HashMap::new();
    let mut consts: HashMap<&str, &onnx_export::Tensor> = HashMap::new();
    let mut constant_bytes = Some(0u64);
    for t in &g.initializers {
        let shape: Option<Vec<usize>> = t.dims.iter().map(|&d| usize::try_from(d).ok()).collect();
        let shape = shape.ok_or_else(|| {
            bad(format!(
                "initializer '{}' has negative dims {:?}",
                t.name, t.dims
            ))
        })?;
        let want = budget::bytes_of(&shape, t.dtype.size_bytes());
        if want != Some(t.raw.len() as u64) {
            return Err(bad(format!(
                "initializer '{}' of {} {:?} holds {} bytes, its shape needs {}",
                t.name,
                t.dtype,
                t.dims,
                t.raw.len(),
                want.map_or("more than fit in memory".into(), |b| b.to_string())
            )));
        }
        constant_bytes = budget::sum([constant_bytes, want]);
        if values
            .insert(
                &t.name,
                Value {
                    dtype: t.dtype,
                    shape,
                },
            )
            .is_some()
        {
            return Err(bad(format!("the name '{}' is defined twice", t.name)));
        }
        consts.insert(&t.name, t);
    }
    let mut tensor_bytes = Some(0u64);
    for vi in &g.inputs {
        let shape = dims_to_shape(&vi.dims).ok_or_else(|| {
            Error::unsupported(
                path,
                format!("input '{}' has no static shape ({:?})", vi.name, vi.dims),
            )
        })?;
        tensor_bytes = budget::sum([
            tensor_bytes,
            budget::bytes_of(&shape, vi.dtype.size_bytes()),
        ]);
        if values
            .insert(
                &vi.name,
                Value {
                    dtype: vi.dtype,
                    shape,
                },
            )
            .is_some()
        {
            return Err(bad(format!("the name '{}' is defined twice", vi.name)));
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let at = || label(n, i);
        let arity = |k: usize| -> Result<()> {
            if n.inputs.len() != k || n.outputs.len() != 1 {
                return Err(bad(format!(
                    "{} has {} inputs and {} outputs, expected {k} and 1",
                    at(),
                    n.inputs.len(),
                    n.outputs.len()
                )));
            }
            Ok(())
        };
        let get = |name: &str| -> Result<Value> {
            values.get(name).cloned().ok_or_else(|| {
                bad(format!(
                    "{} reads '{name}', which is not defined before it",
                    at()
                ))
            })
        };
        let out = match n.op_type.as_str() {
            "MatMul" => {
                arity(2)?;
                let (a, b) = (get(&n.inputs[0])?, get(&n.inputs[1])?);
                if a.dtype != b.dtype || !is_float(a.dtype) {
                    return Err(bad(format!(
                        "{} multiplies {} by {}; MatMul needs two tensors of one float type",
                        at(),
                        a.dtype,
                        b.dtype
                    )));
                }
                let (ra, rb) = (a.shape.len(), b.shape.len());
                if ra < 2 || rb < 2 {
                    return Err(Error::unsupported(
                        path,
                        format!("{}: operands of rank < 2 are not supported", at()),
                    ));
                }
                let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
                let (k2, nn) = (b.shape[rb - 2], b.shape[rb - 1]);
                if k != k2 {
                    return Err(bad(format!(
                        "{}: inner dimensions differ ({:?} x {:?})",
                        at(),
                        a.shape,
                        b.shape
                    )));
                }
                // Broadcast the batch dimensions (numpy rules).
                let (ba, bb) = (&a.shape[..ra - 2], &b.shape[..rb - 2]);
                let r = ba.len().max(bb.len());
                let mut shape = Vec::with_capacity(r + 2);
                for j in 0..r {
                    let da = if j + ba.len() >= r {
                        ba[j + ba.len() - r]
                    } else {
                        1
                    };
                    let db = if j + bb.len() >= r {
                        bb[j + bb.len() - r]
                    } else {
                        1
                    };
                    if da != db && da != 1 && db != 1 {
                        return Err(bad(format!(
                            "{}: batch dimensions do not broadcast ({:?} x {:?})",
                            at(),
                            a.shape,
                            b.shape
                        )));
                    }
                    shape.push(da.max(db));
                }
                shape.extend([m, nn]);
                Value {
                    dtype: a.dtype,
                    shape,
                }
            }
            "Gather" => {
                arity(2)?;
                let data = get(&n.inputs[0])?;
                let Some(t) = consts.get(n.inputs[1].as_str()) else {
                    return Err(Error::unsupported(
                        path,
                        format!("{}: its indices are not a constant", at()),
                    ));
                };
                let r = data.shape.len() as i64;
                let axis = attr_int(n, "axis").unwrap_or(0);
                if r == 0 || axis < -r || axis >= r {
                    return Err(bad(format!(
                        "{}: axis {axis} is outside a tensor of rank {r}",
                        at()
                    )));
                }
                let axis = if axis < 0 { axis + r } else { axis } as usize;
                let idx = match t.dtype {
                    DataType::I64 | DataType::I32 => t.to_i64_vec(),
                    _ => None,
                }
                .ok_or_else(|| {
                    bad(format!(
                        "{}: indices '{}' are {}, not int32/int64",
                        at(),
                        t.name,
                        t.dtype
                    ))
                })?;
                let d = data.shape[axis] as i64;
                if let Some(v) = idx.iter().find(|&&v| v < -d || v >= d) {
                    return Err(bad(format!(
                        "{}: index {v} is out of range for axis {axis} of length {d} (allowed \
                         {}..={})",
                        at(),
                        -d,
                        d - 1
                    )));
                }
                let ishape: Vec<usize> = t.dims.iter().map(|&v| v as usize).collect();
                let mut shape = data.shape[..axis].to_vec();
                shape.extend(&ishape);
                shape.extend(&data.shape[axis + 1..]);
                Value {
                    dtype: data.dtype,
                    shape,
                }
            }
            "Reshape" => {
                arity(2)?;
                let data = get(&n.inputs[0])?;
                let target = consts
                    .get(n.inputs[1].as_str())
                    .filter(|t| t.dtype == DataType::I64)
                    .and_then(|t| t.to_i64_vec())
                    .ok_or_else(|| {
                        Error::unsupported(
                            path,
                            format!("{}: its shape is not a constant int64 tensor", at()),
                        )
                    })?;
                let allowzero = attr_int(n, "allowzero").unwrap_or(0) != 0;
                let count = budget::elems(&data.shape);
                let mut shape = Vec::with_capacity(target.len());
                let mut infer = None;
                for (j, &v) in target.iter().enumerate() {
                    match v {
                        0 if !allowzero => match data.shape.get(j) {
                            Some(&d) => shape.push(d),
                            None => {
                                return Err(bad(format!(
                                    "{}: target {target:?} copies dimension {j} of a rank-{} \
                                     tensor",
                                    at(),
                                    data.shape.len()
                                )))
                            }
                        },
                        -1 if infer.is_none() => {
                            infer = Some(j);
                            shape.push(1);
                        }
                        v if v > 0 => shape.push(v as usize),
                        _ => {
                            return Err(bad(format!(
                                "{}: target {target:?} is not a valid static shape",
                                at()
                            )))
                        }
                    }
                }
                let known = budget::elems(&shape);
                if let Some(j) = infer {
                    match (count, known) {
                        (Some(c), Some(k)) if k > 0 && c % k == 0 => shape[j] = (c / k) as usize,
                        _ => {
                            return Err(bad(format!(
                                "{}: {:?} cannot be reshaped to {target:?}",
                                at(),
                                data.shape
                            )))
                        }
                    }
                }
                let after = budget::elems(&shape);
                if after.is_none() || after != count {
                    return Err(bad(format!(
                        "{}: {:?} cannot be reshaped to {target:?} ({}): the element count \
                         differs",
                        at(),
                        data.shape,
                        if after.is_none() {
                            "overflows".to_string()
                        } else {
                            format!("{shape:?}")
                        }
                    )));
                }
                Value {
                    dtype: data.dtype,
                    shape,
                }
            }
            "Cast" => {
                arity(1)?;
                let data = get(&n.inputs[0])?;
                let to = attr_int(n, "to")
                    .and_then(|c| i32::try_from(c).ok())
                    .and_then(DataType::from_onnx_code)
                    .ok_or_else(|| {
                        Error::unsupported(
                            path,
                            format!("{}: its 'to' type is not supported", at()),
                        )
                    })?;
                Value {
                    dtype: to,
                    shape: data.shape,
                }
            }
            _ => unreachable!("ops checked above"),
        };
        let name = n.outputs[0].as_str();
        if name.is_empty() {
            return Err(bad(format!("{} has an unnamed output", at())));
        }
        tensor_bytes = budget::sum([
            tensor_bytes,
            budget::bytes_of(&out.shape, out.dtype.size_bytes()),
        ]);
        if tensor_bytes.is_none() {
            return Err(Error::TooLarge {
                path: path.to_path_buf(),
                message: format!(
                    "{}: its output {:?} is so large that its size in bytes overflows",
                    at(),
                    out.shape
                ),
            });
        }
        if values.insert(name, out).is_some() {
            return Err(bad(format!("the name '{name}' is defined twice")));
        }
    }
    // Declared shapes must be the inferred ones (engines trust them).
    let declared = g
        .outputs
        .iter()
        .map(|v| (v, "output"))
        .chain(g.value_infos.iter().map(|v| (v, "value_info")));
    for (vi, what) in declared {
        let Some(v) = values.get(vi.name.as_str()) else {
            if what == "output" {
                return Err(bad(format!("output '{}' is never computed", vi.name)));
            }
            continue;
        };
        let dims: Vec<i64> = v.shape.iter().map(|&d| d as i64).collect();
        if vi.dims != dims || vi.dtype != v.dtype {
            return Err(bad(format!(
                "{what} '{}' is declared {} {:?}, but the graph computes {} {:?}",
                vi.name, vi.dtype, vi.dims, v.dtype, dims
            )));
        }
    }
    let run_bytes = budget::sum([
        Some(file_bytes),
        constant_bytes,
        constant_bytes,
        tensor_bytes,
    ]);
    if let Some(b) = budget {
        b.check(
            path,
            "running this graph (its constants, input, output and intermediate tensors)",
            run_bytes,
            "raise --max-memory-mb if the machine has the memory",
        )?;
    }
    let over = |what: &str| Error::TooLarge {
        path: path.to_path_buf(),
        message: format!("{what}: its size in bytes overflows (a crafted or corrupt graph)"),
    };
    Ok(Checked {
        constant_bytes: constant_bytes.ok_or_else(|| over("the constants"))?,
        tensor_bytes: tensor_bytes.ok_or_else(|| over("the tensors"))?,
        run_bytes: run_bytes.ok_or_else(|| over("a run"))?,
    })
}
