//! The `dctchop` binary as a user types it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dctchop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dctchop"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dctchop-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn export_as_documented_then_refuse_to_clobber_then_force() {
    let dir = tmpdir("export");
    let d = dir.to_str().unwrap();
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d]);
    assert!(o.status.success(), "{}", text(&o));
    let stem = "chop-cf4-b8-n1x3x256x256-tile32-s1-f32";
    for ext in ["compress.onnx", "decompress.onnx", "json"] {
        assert!(dir.join(format!("{stem}.{ext}")).is_file(), "{ext}");
    }
    assert!(text(&o).contains("ratio 4.0000"), "{}", text(&o));
    let before = std::fs::read(dir.join(format!("{stem}.compress.onnx"))).unwrap();
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("already exists") && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    assert_eq!(
        before,
        std::fs::read(dir.join(format!("{stem}.compress.onnx"))).unwrap()
    );
    let o = dctchop(&["export", "--cf", "4", "--res", "256", "-o", d, "--force"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = dctchop(&[
        "inspect",
        dir.join(format!("{stem}.compress.onnx")).to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("MatMul") && t.contains("[1, 3, 128, 128]") && t.contains("chop-blockgrid-v1"),
        "{t}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_option_and_rectangular_sizes() {
    let dir = tmpdir("options");
    let d = dir.to_str().unwrap();
    let o = dctchop(&[
        "export",
        "--cf",
        "3",
        "--res",
        "344x403",
        "--channels",
        "1",
        "--batch",
        "4",
        "--block",
        "8",
        "--variant",
        "triangle",
        "--tile",
        "16",
        "--dtype",
        "f16",
        "--opset",
        "17",
        "-o",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["compressed_shape"],
        serde_json::json!([4, 1, 43 * 51 * 6])
    );
    assert_eq!(v["opset"], 17);
    let o = dctchop(&[
        "export",
        "--cf",
        "2",
        "--res",
        "256",
        "--serialize",
        "2",
        "--tile",
        "full",
        "-o",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("128x128 chunk"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tmpdir("bad");
    let d = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["export", "--cf", "9", "--res", "64"],
            "cf = 9: allowed is 1..=8",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--block", "12"],
            "block = 12",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--tile", "12"],
            "tile = 12",
        ),
        (
            vec!["export", "--cf", "4", "--res", "300", "--serialize", "4"],
            "serialize = 4",
        ),
        (vec!["export", "--cf", "4", "--res", "0x5"], "invalid --res"),
        (
            vec!["export", "--cf", "4", "--res", "64", "--variant", "zigzag"],
            "unknown variant",
        ),
        (
            vec!["export", "--cf", "4", "--res", "64", "--opset", "9"],
            "opset = 9",
        ),
        (
            vec!["export", "--cf", "4", "--res", "16384", "--tile", "full"],
            "--tile auto",
        ),
    ];
    for (mut args, want) in cases {
        args.extend(["-o", d]);
        let o = dctchop(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    // Nothing was written by any failing export.
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0);
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let o = dctchop(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("junk.onnx") && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );
    let o = dctchop(&["inspect", dir.join("missing.onnx").to_str().unwrap()]);
    assert!(text(&o).contains("missing.onnx"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
