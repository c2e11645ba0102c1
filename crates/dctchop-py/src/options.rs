//! Python keyword arguments → library options. Each option is parsed on its own, so an error
//! names the option, the value given and what is allowed; unknown keywords are refused with the
//! list of known ones.
//!
//! `compress_options` starts from `CompressOptions::default()` and sets only the keywords
//! given: a field added to the library's `CompressOptions` needs one more arm here (and one more
//! name in `COMPRESS_KEYS`), nothing else.

use std::str::FromStr;

use dctchop::container::{Entropy, Payload, Store};
use dctchop::pipeline::CompressOptions;
use dctchop::{CodeType, Device, EngineKind, EngineOptions, Quant, Spec, Tile, Variant};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::{err, raise};

fn invalid(key: &str, v: &Bound<'_, PyAny>, allowed: &str) -> PyErr {
    let shown = v
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    raise(
        "SpecError",
        format!("invalid {key} = {shown}: allowed is {allowed}"),
    )
}

fn count(key: &str, v: &Bound<'_, PyAny>, min: usize) -> PyResult<usize> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid(key, v, &format!("an integer >= {min}")));
    }
    v.extract::<usize>()
        .ok()
        .filter(|&n| n >= min)
        .ok_or_else(|| invalid(key, v, &format!("an integer >= {min}")))
}

fn text(key: &str, v: &Bound<'_, PyAny>, allowed: &str) -> PyResult<String> {
    v.cast::<PyString>()
        .map(|s| s.to_string())
        .map_err(|_| invalid(key, v, allowed))
}

fn parsed<T: FromStr<Err = String>>(key: &str, v: &Bound<'_, PyAny>, allowed: &str) -> PyResult<T> {
    let s = text(key, v, allowed)?;
    s.parse::<T>()
        .map_err(|e| raise("SpecError", format!("invalid {key} = {s:?}: {e}")))
}

fn tile(v: &Bound<'_, PyAny>) -> PyResult<Tile> {
    const ALLOWED: &str = "'auto', 'full' or a tile size (an integer, a multiple of the block)";
    if let Ok(n) = count("tile", v, 1) {
        return Ok(Tile::Size(n));
    }
    parsed("tile", v, ALLOWED)
}

/// `quant`: None, `(code, step)` or a dict `{"code", "step", "rows", "cols", "mix"}`.
fn quant(v: &Bound<'_, PyAny>) -> PyResult<Option<Quant>> {
    const ALLOWED: &str = "None, (code, step) such as ('i8', 2.5), or a dict with keys code, \
                           step and optionally rows, cols (per-frequency step multipliers), mix \
                           ('opponent' or None)";
    if v.is_none() {
        return Ok(None);
    }
    if let Ok((code, step)) = v.extract::<(String, f64)>() {
        let code = CodeType::from_str(&code)
            .map_err(|e| raise("SpecError", format!("invalid quant code: {e}")))?;
        return Ok(Some(Quant::uniform(code, step)));
    }
    let d = v
        .cast::<PyDict>()
        .map_err(|_| invalid("quant", v, ALLOWED))?;
    let mut code = None;
    let mut step = None;
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    let mut mix = None;
    for (k, val) in d.iter() {
        let k: String = k.extract().map_err(|_| invalid("quant", v, ALLOWED))?;
        match k.as_str() {
            "code" => code = Some(parsed::<CodeType>("quant code", &val, "'i8' or 'i16'")?),
            "step" => {
                step = Some(
                    val.extract::<f64>()
                        .map_err(|_| invalid("quant step", &val, "a number > 0"))?,
                )
            }
            "rows" => {
                rows = val
                    .extract()
                    .map_err(|_| invalid("quant rows", &val, "a list of CF numbers"))?
            }
            "cols" => {
                cols = val
                    .extract()
                    .map_err(|_| invalid("quant cols", &val, "a list of CF numbers"))?
            }
            "mix" if val.is_none() => mix = None,
            "mix" => mix = Some(parsed("quant mix", &val, "'opponent' or None")?),
            _ => return Err(invalid("quant", v, ALLOWED)),
        }
    }
    match (code, step) {
        (Some(c), Some(s)) => Ok(Some(
            Quant::uniform(c, s)
                .with_multipliers(rows, cols)
                .with_mix(mix),
        )),
        _ => Err(invalid("quant", v, ALLOWED)),
    }
}

/// Keywords of a spec besides height, width and cf.
pub const SPEC_KEYS: [&str; 8] = [
    "channels",
    "batch",
    "block",
    "variant",
    "tile",
    "serialize",
    "dtype",
    "quant",
];

/// A validated spec from `height`, `width`, `cf` and the keywords of [`SPEC_KEYS`].
pub fn spec_from_kwargs(
    _py: Python<'_>,
    height: usize,
    width: usize,
    cf: usize,
    kw: Option<&Bound<'_, PyDict>>,
) -> PyResult<Spec> {
    let mut spec = Spec::new(height, width, cf);
    if let Some(kw) = kw {
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            match k.as_str() {
                "channels" => spec.channels = count(&k, &v, 1)?,
                "batch" => spec.batch = count(&k, &v, 1)?,
                "block" => spec.block = count(&k, &v, 1)?,
                "variant" => spec.variant = parsed::<Variant>(&k, &v, "'chop' or 'triangle'")?,
                "tile" => spec.tile = tile(&v)?,
                "serialize" => spec.serialize = count(&k, &v, 1)?,
                "dtype" => spec.dtype = parsed::<dctchop::Dtype>(&k, &v, "'f32' or 'f16'")?,
                "quant" => spec.quant = quant(&v)?,
                _ => {
                    return Err(raise(
                        "SpecError",
                        format!(
                            "unknown spec keyword '{k}': allowed are height, width, cf, {}",
                            SPEC_KEYS.join(", ")
                        ),
                    ))
                }
            }
        }
    }
    spec.validate().map_err(err)?;
    Ok(spec)
}

/// A validated spec from a dict or its JSON text (the form containers and sidecars store).
pub fn spec_from_any(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Spec> {
    let json: String = if let Ok(s) = v.cast::<PyString>() {
        s.to_string()
    } else {
        py.import("json")?
            .call_method1("dumps", (v,))
            .map_err(|e| raise("SpecError", format!("spec: not JSON-serializable: {e}")))?
            .extract()?
    };
    let spec: Spec = serde_json::from_str(&json).map_err(|e| {
        raise(
            "SpecError",
            format!("spec: not a dctchop spec: {e} in {json}"),
        )
    })?;
    spec.validate().map_err(err)?;
    Ok(spec)
}

/// Engine options from the `engine`, `threads`, `device` keywords.
pub fn engine_options(
    engine: &str,
    threads: Option<usize>,
    device: &str,
) -> PyResult<EngineOptions> {
    let kind = EngineKind::from_str(engine)
        .map_err(|e| raise("SpecError", format!("invalid engine = {engine:?}: {e}")))?;
    let device = Device::from_str(device)
        .map_err(|e| raise("SpecError", format!("invalid device = {device:?}: {e}")))?;
    let mut o = EngineOptions::default().with_kind(kind).with_device(device);
    if let Some(t) = threads {
        if t == 0 {
            return Err(raise(
                "SpecError",
                "invalid threads = 0: allowed is an integer >= 1 or None (all cores)".into(),
            ));
        }
        o = o.with_threads(t);
    }
    Ok(o)
}

/// Shard size in MB → bytes.
pub fn shard_bytes(mb: f64) -> PyResult<u64> {
    if !(mb.is_finite() && mb > 0.0) {
        return Err(raise(
            "SpecError",
            format!("invalid shard_mb = {mb}: allowed is a number > 0"),
        ));
    }
    Ok((mb * 1e6) as u64)
}

/// What a part stores: codes for a quantized spec (raw or zstd), else floats of `store`.
pub fn payload_for(spec: &Spec, store: &str, entropy: &str) -> PyResult<Payload> {
    let store = Store::from_str(store)
        .map_err(|e| raise("SpecError", format!("invalid store = {store:?}: {e}")))?;
    let entropy = match entropy.to_ascii_lowercase().as_str() {
        "none" => Entropy::None,
        "zstd" => Entropy::Zstd {
            level: dctchop::container::DEFAULT_ZSTD_LEVEL,
        },
        other => match other
            .strip_prefix("zstd:")
            .and_then(|l| l.parse::<i32>().ok())
        {
            Some(level) if dctchop::entropy::LEVELS.contains(&level) => Entropy::Zstd { level },
            _ => {
                return Err(raise(
                    "SpecError",
                    format!(
                        "invalid entropy = {entropy:?}: allowed are 'none', 'zstd', 'zstd:LEVEL' \
                         (LEVEL 1..=22)"
                    ),
                ))
            }
        },
    };
    Ok(Payload::for_spec(spec, store, entropy))
}

/// Keywords of `compress_files` (the CLI's `compress` flags).
pub const COMPRESS_KEYS: [&str; 19] = [
    "quant",
    "code",
    "entropy",
    "mix",
    "target_psnr",
    "target_ratio",
    "max_error",
    "cf",
    "block",
    "variant",
    "tile",
    "batch",
    "store",
    "shard_mb",
    "max_memory_mb",
    "engine",
    "threads",
    "device",
    "force",
];

/// `CompressOptions` from keywords (see the module documentation).
pub fn compress_options(kw: Option<&Bound<'_, PyDict>>) -> PyResult<CompressOptions> {
    let mut o = CompressOptions::default();
    let (mut engine, mut threads, mut device) = ("auto".to_string(), None, "cpu".to_string());
    let (mut quant_given, mut store_given) = (false, false);
    let number = |k: &str, v: &Bound<'_, PyAny>| -> PyResult<f64> {
        v.extract::<f64>().map_err(|_| invalid(k, v, "a number"))
    };
    if let Some(kw) = kw {
        for (k, v) in kw.iter() {
            let k: String = k.extract()?;
            match k.as_str() {
                "quant" => {
                    quant_given = true;
                    o.quant = if let Ok(step) = v.extract::<f64>() {
                        if !(step.is_finite() && step > 0.0) {
                            return Err(invalid(&k, &v, "'auto', 'none' or a step > 0"));
                        }
                        dctchop::pipeline::QuantChoice::Step(step)
                    } else if v.is_none() {
                        dctchop::pipeline::QuantChoice::None
                    } else {
                        parsed(&k, &v, "'auto', 'none' or a step > 0")?
                    }
                }
                "code" => o.code = Some(parsed(&k, &v, "'i8' or 'i16'")?),
                "mix" => {
                    o.mix = if v.is_none() {
                        dctchop::quant::MixChoice::None
                    } else {
                        parsed(&k, &v, "'auto', 'none', 'opponent' or None")?
                    }
                }
                "entropy" => {
                    let e = text(&k, &v, "'none', 'zstd' or 'zstd:LEVEL'")?;
                    o.entropy = match payload_for(
                        &Spec::new(8, 8, 1).with_quant(Quant::uniform(CodeType::I8, 1.0)),
                        "f32",
                        &e,
                    )? {
                        Payload::Codes { entropy, .. } => entropy,
                        Payload::Float(_) => unreachable!("a quantized spec"),
                    }
                }
                "target_psnr" => {
                    o.target = Some(dctchop::tune::QualityTarget::Psnr(number(&k, &v)?))
                }
                "target_ratio" => {
                    o.target = Some(dctchop::tune::QualityTarget::Ratio(number(&k, &v)?))
                }
                "max_error" => {
                    o.target = Some(dctchop::tune::QualityTarget::MaxError(number(&k, &v)?))
                }
                "cf" => o.cf = count(&k, &v, 1)?,
                "block" => o.block = count(&k, &v, 1)?,
                "variant" => o.variant = parsed(&k, &v, "'chop' or 'triangle'")?,
                "tile" => o.tile = tile(&v)?,
                "batch" => o.batch = count(&k, &v, 1)?,
                "store" => {
                    store_given = true;
                    o.store = parsed(&k, &v, "'f32' or 'f16'")?
                }
                "shard_mb" => {
                    o.shard_bytes = shard_bytes(
                        v.extract::<f64>()
                            .map_err(|_| invalid(&k, &v, "a number > 0"))?,
                    )?
                }
                "max_memory_mb" => o.max_memory_mb = count(&k, &v, 1)? as u64,
                "engine" => engine = text(&k, &v, "an engine name")?,
                "threads" => {
                    threads = if v.is_none() {
                        None
                    } else {
                        Some(count(&k, &v, 1)?)
                    }
                }
                "device" => device = text(&k, &v, "'cpu', 'cuda' or 'cuda:N'")?,
                "force" => {
                    o.force = v
                        .extract::<bool>()
                        .map_err(|_| invalid(&k, &v, "True or False"))?
                }
                _ => {
                    return Err(raise(
                        "SpecError",
                        format!(
                            "unknown compress option '{k}': allowed are {}",
                            COMPRESS_KEYS.join(", ")
                        ),
                    ))
                }
            }
        }
    }
    // As the CLI: a float store asked for without a quantization means float coefficients.
    if store_given && !quant_given {
        o.quant = dctchop::pipeline::QuantChoice::None;
    }
    o.engine = engine_options(&engine, threads, &device)?;
    Ok(o)
}
