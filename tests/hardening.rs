//! Crafted and clumsy inputs (issue 15): every one is a one-line error with exit 1 that names
//! the file (or the option), leaves no output behind and changes no input; nothing panics or
//! aborts. One table row per reproduction: the memory budget of every command, graphs checked
//! before any engine runs them, export's constant cap, truncated JPEGs, `--threads`, the
//! container's trust checks (container_id, shard numbering, NaN payloads with a correct CRC, a
//! replaced decompress graph, contradictory metadata), I/O error text.

use crate::common;
use common::dctchop;

use dctchop::container;
use onnx_export::{Attribute, DataType, Graph, Model, Node, Tensor, ValueInfo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn write_f32_npy(path: &Path, shape: &[usize], data: &[f32]) {
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), data.to_vec()).unwrap();
    dctchop::npy::write_npy(path, a.view(), dctchop::Dtype::F32, true).unwrap();
}

/// A shard as (safetensors header JSON, payload).
fn split(shard: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(shard[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&shard[8..8 + n]).unwrap(),
        shard[8 + n..].to_vec(),
    )
}

/// A shard from a header and payload (the header padded to 8 bytes with spaces).
fn join(header: &Value, payload: &[u8]) -> Vec<u8> {
    let mut hb = serde_json::to_vec(header).unwrap();
    while !hb.len().is_multiple_of(8) {
        hb.push(b' ');
    }
    let mut out = (hb.len() as u64).to_le_bytes().to_vec();
    out.extend(&hb);
    out.extend(payload);
    out
}

/// Rewrite the single-shard container at `dst` from `src`'s shard: `edit` changes the metadata
/// strings and the payload; the checksum is recomputed, and the container_id too when the header
/// still parses, so only what `edit` broke is wrong.
fn craft(src: &Path, dst: &Path, edit: impl FnOnce(&mut Value, &mut Vec<u8>)) {
    let (mut h, mut payload) = split(&std::fs::read(container::shard_path(src, 0)).unwrap());
    edit(&mut h, &mut payload);
    let crc = format!("crc32:{:08x}", crc32fast::hash(&payload));
    h["__metadata__"]["checksum"] = crc.into();
    let shard = container::shard_path(dst, 0);
    std::fs::write(&shard, join(&h, &payload)).unwrap();
    if let Ok(hd) = container::read_header(&shard) {
        let id = container::container_id(&hd.spec, &hd.info, &[hd.crc32.as_str()]);
        h["__metadata__"]["container_id"] = id.into();
        std::fs::write(&shard, join(&h, &payload)).unwrap();
    }
}

fn set(h: &mut Value, k: &str, v: &str) {
    h["__metadata__"][k] = v.into();
}

/// A graph `x [1, n] f32 -> Gather(axis, indices) -> y` (nothing else).
fn gather_graph(n: usize, axis: i64, indices: &[i64], out_dims: Vec<i64>) -> Vec<u8> {
    let g = Graph {
        name: "g".into(),
        inputs: vec![ValueInfo::new("x", DataType::F32, vec![1, n as i64])],
        outputs: vec![ValueInfo::new("y", DataType::F32, out_dims)],
        initializers: vec![Tensor::from_i64("i", vec![indices.len() as i64], indices).unwrap()],
        nodes: vec![Node::new("gather", "Gather", &["x", "i"], &["y"])
            .with_attr(Attribute::int("axis", axis))],
        value_infos: vec![],
        doc: String::new(),
    };
    Model::new(g, 13).unwrap().encode().unwrap()
}

/// An 87-byte-class PNG: a valid header declaring `w`x`h` RGB, a tiny IDAT, no real pixels.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, t: &[u8], d: &[u8]) {
        out.extend((d.len() as u32).to_be_bytes());
        let mut c = t.to_vec();
        c.extend(d);
        out.extend(&c);
        out.extend(crc32fast::hash(&c).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A `.npy` whose header declares `shape` of `<f4` over `data_bytes` zero bytes.
fn npy_with_header(shape: &str, data_bytes: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((header.len() as u16).to_le_bytes());
    v.extend(header.as_bytes());
    v.extend(vec![0u8; data_bytes]);
    v
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    let mut v: Vec<_> = v
        .into_iter()
        .map(|p| {
            let b = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                vec![]
            };
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// (name, CLI args, texts the one-line error must contain, whether it must name a file)
type Row = (&'static str, Vec<String>, Vec<&'static str>, bool);

#[test]
fn crafted_inputs_fail_cleanly_within_the_budget() {
    let dir = common::fresh_dir("hardening", "table");
    let inp = dir.join("in");
    let out = dir.join("out");
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let i = |f: &str| s(&inp.join(f));
    let o = |f: &str| s(&out.join(f));

    // A good container, float payload, one shard.
    write_f32_npy(
        &inp.join("ok.npy"),
        &[2, 3, 16, 16],
        &(0..1536).map(|v| (v % 251) as f32).collect::<Vec<_>>(),
    );
    let good = inp.join("good");
    let r = dctchop(&[
        "compress",
        &i("ok.npy"),
        "-o",
        &s(&good),
        "--quant",
        "none",
        "--quiet",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    write_f32_npy(
        &inp.join("med.npy"),
        &[1, 3, 256, 256],
        &vec![2.0; 3 * 65536],
    );
    let med = inp.join("med");
    let r = dctchop(&[
        "compress",
        &i("med.npy"),
        "-o",
        &s(&med),
        "--quant",
        "none",
        "--quiet",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    // Item 1: a 65536² container whose payload is only 8 MiB (1 channel, block 32, CF 1, f16),
    // with a correct CRC and container_id.
    write_f32_npy(&inp.join("one.npy"), &[1, 1, 32, 32], &[1.0; 1024]);
    let small = inp.join("small");
    let r = dctchop(&[
        "compress",
        &i("one.npy"),
        "-o",
        &s(&small),
        "--block",
        "32",
        "--cf",
        "1",
        "--store",
        "f16",
        "--quiet",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    craft(&small, &inp.join("huge"), |h, p| {
        let m = &mut h["__metadata__"];
        let mut spec: Value = serde_json::from_str(m["spec"].as_str().unwrap()).unwrap();
        spec["height"] = 65536.into();
        spec["width"] = 65536.into();
        m["spec"] = spec.to_string().into();
        m["original_shape"] = "[1,1,65536,65536]".into();
        m.as_object_mut().unwrap().remove("graph_sha256");
        *p = vec![0u8; 2048 * 2048 * 2];
        h["coefficients"]["shape"] = serde_json::json!([1, 1, 2048, 2048]);
        h["coefficients"]["data_offsets"] = serde_json::json!([0, 2048 * 2048 * 2]);
    });
    // The header parses: the container is "valid", only too large.
    container::open(&inp.join("huge")).unwrap();

    // Item 11: shards that contradict themselves or each other, with correct CRCs.
    craft(&good, &inp.join("idx1"), |h, _| {
        set(h, "shard_index", "1");
        set(h, "shard_count", "2");
    });
    craft(&good, &inp.join("first9"), |h, _| {
        set(h, "shard_first_sample", "9")
    });
    craft(&good, &inp.join("nan"), |_, p| {
        p[..4].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    craft(&good, &inp.join("minmax"), |h, _| {
        set(h, "value_min", "300.0");
        set(h, "value_max", "3.0");
    });
    craft(&good, &inp.join("nanratio"), |h, _| {
        set(h, "stored_ratio", "NaN")
    });
    craft(&good, &inp.join("nanmin"), |h, _| {
        set(h, "value_min", "NaN")
    });
    craft(&good, &inp.join("otherid"), |h, _| {
        set(h, "container_id", "0123456789abcdef0123456789abcdef")
    });
    // The id is recomputed by craft(); break it afterwards.
    let p = container::shard_path(&inp.join("otherid"), 0);
    let (mut h, payload) = split(&std::fs::read(&p).unwrap());
    set(&mut h, "container_id", "0123456789abcdef0123456789abcdef");
    std::fs::write(&p, join(&h, &payload)).unwrap();
    // A decompress graph that is not the one the shards were written with.
    let g2 = inp.join("g2");
    std::fs::copy(
        container::shard_path(&good, 0),
        container::shard_path(&g2, 0),
    )
    .unwrap();
    let mut graph = std::fs::read(container::graph_path(&good)).unwrap();
    let last = graph.len() - 1;
    graph[last] ^= 1;
    std::fs::write(container::graph_path(&g2), graph).unwrap();

    // Item 1/2: graphs that would panic or abort an engine.
    std::fs::write(
        inp.join("oor.onnx"),
        gather_graph(243, 1, &[1_000_000], vec![1, 1]),
    )
    .unwrap();
    // x [1, 100000] gathered 100000 times along axis 0: a 40 GB output from a 1 MB file.
    std::fs::write(
        inp.join("blowup.onnx"),
        gather_graph(100_000, 0, &vec![0; 100_000], vec![100_000, 100_000]),
    )
    .unwrap();
    write_f32_npy(&inp.join("x243.npy"), &[1, 243], &[0.5; 243]);
    write_f32_npy(&inp.join("x100k.npy"), &[1, 100_000], &vec![0.5; 100_000]);
    // A graph whose declared output disagrees with what it computes.
    std::fs::write(
        inp.join("lie.onnx"),
        gather_graph(243, 1, &[0, 1], vec![1, 3]),
    )
    .unwrap();

    // A real graph and input, for the output-path rows.
    let r = dctchop(&[
        "export",
        "--cf",
        "4",
        "--res",
        "16",
        "-o",
        &i("g"),
        "--json",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let exported: Value = serde_json::from_slice(&r.stdout).unwrap();
    let cgraph = inp.join("g").join(format!(
        "{}.compress.onnx",
        exported["name"].as_str().unwrap()
    ));
    write_f32_npy(&inp.join("x16.npy"), &[1, 3, 16, 16], &[1.0; 768]);

    // Item 1: image headers declaring huge images; item 7: a truncated JPEG.
    std::fs::write(inp.join("huge.png"), png_header_only(50_000, 50_000)).unwrap();
    let jpg = std::fs::read(common::sample_images().join("hubble_deep_field.jpg")).unwrap();
    std::fs::write(inp.join("trunc.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    // Minor: a .npy header whose size overflows.
    std::fs::write(
        inp.join("overflow.npy"),
        npy_with_header("(4611686018427387904, 4611686018427387904, 8)", 64),
    )
    .unwrap();
    std::fs::write(
        inp.join("short.npy"),
        npy_with_header("(100000, 100000)", 64),
    )
    .unwrap();
    // Found by fuzzing: deeply nested brackets made npyz's header parser backtrack for minutes.
    let mut deep = b"\x93NUMPY\x01\x00v\x00".to_vec();
    deep.extend(format!("{}'descr': '<f4', 'shape': (2,)", "{".repeat(14)).as_bytes());
    deep.resize(10 + 0x76, b' ');
    deep.extend([0u8; 8]);
    std::fs::write(inp.join("deep.npy"), &deep).unwrap();

    let strs = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let rows: Vec<Row> = vec![
        (
            "decompress of a 65536² container",
            strs(&["decompress", &i("huge"), "-o", &o("h.npy")]),
            vec![
                "too large for the memory cap",
                "--max-memory-mb 4096",
                "--batch",
            ],
            true,
        ),
        (
            "decompress with a tiny budget",
            strs(&[
                "decompress",
                &s(&med),
                "-o",
                &o("t.npy"),
                "--max-memory-mb",
                "1",
            ]),
            vec!["memory cap"],
            true,
        ),
        (
            "eval of a 50000² PNG header",
            strs(&["eval", &i("huge.png"), "-o", &o("ev"), "--no-baselines"]),
            vec!["too large for the memory cap", "50000x50000"],
            true,
        ),
        (
            "compress of a 50000² PNG header",
            strs(&["compress", &i("huge.png"), "-o", &o("c")]),
            vec!["memory cap"],
            true,
        ),
        (
            "compress with a budget beyond the machine",
            strs(&[
                "compress",
                &i("ok.npy"),
                "-o",
                &o("c"),
                "--max-memory-mb",
                "999999999",
            ]),
            vec!["--max-memory-mb = 999999999", "allowed is 1..="],
            false,
        ),
        (
            "run of a Gather index out of range",
            strs(&[
                "run",
                &i("oor.onnx"),
                "--input",
                &i("x243.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec!["index 1000000 is out of range for axis 1 of length 243"],
            true,
        ),
        (
            "inspect of a Gather index out of range",
            strs(&["inspect", &i("oor.onnx")]),
            vec!["out of range"],
            true,
        ),
        (
            "run of a Gather that expands to 40 GB",
            strs(&[
                "run",
                &i("blowup.onnx"),
                "--input",
                &i("x100k.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec!["too large for the memory cap", "running this graph"],
            true,
        ),
        (
            "run of a graph whose declared output lies",
            strs(&[
                "run",
                &i("lie.onnx"),
                "--input",
                &i("x243.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec![
                "output 'y' is declared float32 [1, 3]",
                "computes float32 [1, 2]",
            ],
            true,
        ),
        (
            "run with --threads 100000",
            strs(&[
                "run",
                &s(&cgraph),
                "--input",
                &i("x16.npy"),
                "-o",
                &o("y.npy"),
                "--threads",
                "100000",
            ]),
            vec!["--threads = 100000", "1..=1024"],
            false,
        ),
        (
            "compress with --threads 100000",
            strs(&[
                "compress",
                &i("ok.npy"),
                "-o",
                &o("c"),
                "--threads",
                "100000",
            ]),
            vec!["--threads = 100000"],
            false,
        ),
        (
            "run into a missing directory",
            strs(&[
                "run",
                &s(&cgraph),
                "--input",
                &i("x16.npy"),
                "-o",
                &o("nodir/y.npy"),
            ]),
            vec!["nodir/y.npy: "],
            true,
        ),
        (
            "export --res 1x1000000000000",
            strs(&[
                "export",
                "--cf",
                "4",
                "--res",
                "1x1000000000000",
                "-o",
                &o("e"),
            ]),
            vec!["height x width = 1x1000000000000", "Gather index vectors"],
            false,
        ),
        (
            "export --res 536870912",
            strs(&["export", "--cf", "4", "--res", "536870912", "-o", &o("e")]),
            vec!["Gather index vectors"],
            false,
        ),
        (
            "export within a small budget",
            strs(&[
                "export",
                "--cf",
                "4",
                "--res",
                "4096",
                "--tile",
                "full",
                "-o",
                &o("e"),
                "--max-memory-mb",
                "1",
            ]),
            vec!["memory cap", "--max-memory-mb 1"],
            true,
        ),
        (
            "truncated JPEG",
            strs(&["compress", &i("trunc.jpg"), "-o", &o("c")]),
            vec!["truncated or corrupt JPEG"],
            true,
        ),
        (
            "truncated JPEG in eval",
            strs(&[
                "eval",
                &i("trunc.jpg"),
                "-o",
                &o("ev"),
                "--no-baselines",
                "--cf",
                "4",
            ]),
            vec!["truncated or corrupt JPEG"],
            true,
        ),
        (
            "npy shape that overflows",
            strs(&["compress", &i("overflow.npy"), "-o", &o("c")]),
            vec!["overflows"],
            true,
        ),
        (
            "npy shape that overflows, read whole by run",
            strs(&[
                "run",
                &s(&cgraph),
                "--input",
                &i("overflow.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec!["overflows"],
            true,
        ),
        (
            "npy header larger than its data, read whole by run",
            strs(&[
                "run",
                &s(&cgraph),
                "--input",
                &i("short.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec!["truncated"],
            true,
        ),
        (
            "npy header nested 14 deep (compress)",
            strs(&["compress", &i("deep.npy"), "-o", &o("c")]),
            vec!["nests brackets more than 3 deep"],
            true,
        ),
        (
            "npy header nested 14 deep (run)",
            strs(&[
                "run",
                &s(&cgraph),
                "--input",
                &i("deep.npy"),
                "-o",
                &o("y.npy"),
            ]),
            vec!["nests brackets more than 3 deep"],
            true,
        ),
        (
            "shard 0 claiming index 1",
            strs(&["decompress", &i("idx1"), "-o", &o("d.npy")]),
            vec!["shard 00000 says it is shard 1"],
            true,
        ),
        (
            "shard 0 claiming first sample 9",
            strs(&["decompress", &i("first9"), "-o", &o("d.npy")]),
            vec!["shard_first_sample 9"],
            true,
        ),
        (
            "NaN payload with a correct CRC",
            strs(&["decompress", &i("nan"), "-o", &o("d.npy")]),
            vec!["non-finite"],
            true,
        ),
        (
            "value_min > value_max",
            strs(&["decompress", &i("minmax"), "-o", &o("d.npy")]),
            vec!["value_min 300 > value_max 3"],
            true,
        ),
        (
            "NaN stored_ratio",
            strs(&["inspect", &i("nanratio")]),
            vec!["stored_ratio", "finite"],
            true,
        ),
        (
            "NaN value_min",
            strs(&["decompress", &i("nanmin"), "-o", &o("d.npy")]),
            vec!["value_min", "finite"],
            true,
        ),
        (
            "container_id that does not match the shards",
            strs(&["decompress", &i("otherid"), "-o", &o("d.npy")]),
            vec!["container_id"],
            true,
        ),
        (
            "a replaced decompress graph",
            strs(&["decompress", &s(&g2), "-o", &o("d.npy")]),
            vec!["not the decompress graph"],
            true,
        ),
        (
            "a missing input (the OS message once)",
            strs(&["compress", &i("nothere.npy"), "-o", &o("c")]),
            vec!["nothere.npy: No such file or directory (os error 2)"],
            true,
        ),
    ];
    for (name, args, needles, names_file) in rows {
        let before_in = snapshot(&inp);
        let before_out = snapshot(&out);
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let t0 = Instant::now();
        let r = dctchop(&args);
        let took = t0.elapsed();
        let err = String::from_utf8_lossy(&r.stderr).to_string();
        println!("{name}: {}", err.trim_end());
        assert_eq!(r.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one line: {err}"
        );
        for n in &needles {
            assert!(err.contains(n), "{name}: wanted '{n}' in: {err}");
        }
        assert!(!err.contains(".tmp"), "{name}: names a temporary: {err}");
        assert_eq!(
            err.matches("os error").count().min(1),
            err.matches("os error").count(),
            "{name}: the OS message repeats: {err}"
        );
        if names_file {
            let named = args
                .iter()
                .skip(1)
                .any(|a| a.contains('/') && err.contains(*a))
                || err.contains(&s(&inp))
                || err.contains(&s(&out));
            assert!(named, "{name}: no file named in: {err}");
        }
        // Fast: refused from declared sizes, nothing large allocated or computed.
        assert!(took < Duration::from_secs(20), "{name}: took {took:?}");
        assert!(snapshot(&inp) == before_in, "{name}: input changed");
        assert!(snapshot(&out) == before_out, "{name}: output left behind");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_cf_ranges_are_capped_before_listing() {
    let r = dctchop(&["eval", "x.npy", "--cf", "1..18446744073709551615"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("a CF is 1..=32"), "{err}");
}

/// Item 11: `--force` onto a container with more shards removes the stale ones; shards of
/// two runs with the same shape are not accepted as one container.
#[test]
fn shards_of_one_run_only() {
    let dir = common::fresh_dir("hardening", "shards");
    // 3 x 512 x 512 f32 at CF 8 is 3.1 MB per sample: --shard-mb 1 gives one sample per shard.
    let x = common::image(3, 3, 512, 512, 7);
    let y = common::image(3, 3, 512, 512, 8);
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    dctchop::npy::write_npy(&xp, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    dctchop::npy::write_npy(&yp, y.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    for (src, stem) in [(&xp, &a), (&yp, &b)] {
        let r = dctchop(&[
            "compress",
            &s(src),
            "-o",
            &s(stem),
            "--cf",
            "8",
            "--shard-mb",
            "1",
            "--quiet",
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(container::shard_path(stem, 2).is_file());
    }
    // Shard 1 of b into a: same spec, shape and shard layout, another run.
    let mixed = dir.join("mixed");
    for k in 0..3 {
        let from = if k == 1 { &b } else { &a };
        std::fs::copy(
            container::shard_path(from, k),
            container::shard_path(&mixed, k),
        )
        .unwrap();
    }
    let e = container::open(&mixed).unwrap_err().to_string();
    assert!(
        e.contains("mixed.00001.safetensors") && e.contains("another container"),
        "{e}"
    );
    // --force onto a with a 1-shard container: shards 1 and 2 of the old run are removed.
    let one = dir.join("one.npy");
    dctchop::npy::write_npy(
        &one,
        x.slice(ndarray::s![..1, .., .., ..]).into_dyn(),
        dctchop::Dtype::F32,
        true,
    )
    .unwrap();
    let r = dctchop(&[
        "compress",
        &s(&one),
        "-o",
        &s(&a),
        "--cf",
        "8",
        "--shard-mb",
        "1",
        "--quiet",
        "--force",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!container::shard_path(&a, 1).exists());
    assert!(!container::shard_path(&a, 2).exists());
    let c = container::open(&a).unwrap();
    assert_eq!(c.shards.len(), 1);
    c.verify().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Item 8: a graph engine runs a 1-sample container with 1-sample graphs, not the requested
/// batch of 8.
#[test]
fn loader_caps_the_graph_batch_at_the_sample_count() {
    let dir = common::fresh_dir("hardening", "loader");
    let x = common::image(1, 3, 32, 32, 3);
    let npy = dir.join("x.npy");
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let stem = dir.join("c");
    let r = dctchop(&["compress", &s(&npy), "-o", &s(&stem), "--quiet"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = container::open(&stem).unwrap();
    let mut loader = c.loader(8, &dctchop::EngineOptions::tract()).unwrap();
    assert_eq!(loader.codec().plan().spec.batch, 1);
    let back = loader.next().unwrap().unwrap();
    assert_eq!(back.shape(), &[1, 3, 32, 32]);
    assert!(loader.next().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// ONNX Runtime's failures are one line: its own log output is silenced. A graph the check
/// accepts but ONNX Runtime's CPU provider cannot run (a bfloat16 MatMul) fails at compile time.
#[test]
fn ort_errors_are_one_line() {
    if !common::ort_ready() {
        return;
    }
    let dir = common::fresh_dir("hardening", "ort");
    let g = Graph {
        name: "g".into(),
        inputs: vec![ValueInfo::new("x", DataType::I8, vec![2, 2])],
        outputs: vec![ValueInfo::new("y", DataType::F32, vec![2, 2])],
        initializers: vec![
            Tensor::from_raw("w", DataType::BF16, vec![2, 2], vec![0u8; 8]).unwrap(),
        ],
        nodes: vec![
            Node::new("c", "Cast", &["x"], &["xb"]).with_attr(Attribute::int("to", 16)),
            Node::new("m", "MatMul", &["xb", "w"], &["yb"]),
            Node::new("c2", "Cast", &["yb"], &["y"]).with_attr(Attribute::int("to", 1)),
        ],
        value_infos: vec![],
        doc: String::new(),
    };
    let graph = dir.join("bf16.onnx");
    std::fs::write(&graph, Model::new(g, 13).unwrap().encode().unwrap()).unwrap();
    let codes = dir.join("x.npy");
    let c = dctchop::Codes::I8(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 2])));
    dctchop::npy::write_npy_codes(&codes, c.view(), true).unwrap();
    let y = dir.join("y.npy");
    let r = dctchop(&[
        "run",
        &s(&graph),
        "--input",
        &s(&codes),
        "-o",
        &s(&y),
        "--engine",
        "ort",
    ]);
    let err = String::from_utf8_lossy(&r.stderr).to_string();
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("ort engine"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes: {err}");
    assert!(!y.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two writers to the same output at once: one wins, the other fails cleanly ("already
/// exists"), and the winner's files are whole.
#[test]
fn concurrent_writers_one_wins() {
    let dir = common::fresh_dir("hardening", "race");
    let x = common::image(4, 3, 128, 128, 5);
    let npy = dir.join("x.npy");
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    for round in 0..4 {
        let stem = dir.join(format!("c{round}"));
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dctchop"))
                .args([
                    "compress",
                    &s(&npy),
                    "-o",
                    &s(&stem),
                    "--quiet",
                    "--batch",
                    "1",
                ])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(ok, 1, "round {round}: {} winners", ok);
        let loser = if a.status.success() { &b } else { &a };
        let err = String::from_utf8_lossy(&loser.stderr);
        assert_eq!(loser.status.code(), Some(1), "{err}");
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        let c = container::open(&stem).unwrap();
        c.verify().unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
