//! Faults that must lose nothing: a signal mid-compress or mid-decompress leaves no file at the
//! final paths (and after SIGINT/SIGTERM no temporary either); a closed stdout ends quietly.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Start `dctchop args`, wait until a hidden temporary appears in `watch` (so the run is
/// mid-write), send `signal`, and return the exit status.
fn interrupt(args: &[&str], watch: &Path, signal: i32) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dctchop"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        // `watch` may not exist yet (the run creates it).
        let busy = entries(watch)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".tmp"));
        if busy {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{args:?} ended ({status}) before a temporary appeared");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no temporary after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    child.wait().unwrap()
}

#[test]
fn signals_mid_run_leave_no_output() {
    let dir = common::fresh_dir("faults", "signals");
    let npy = dir.join("x.npy");
    // Big enough that the f64 reference engine takes seconds.
    let x = common::image(48, 3, 192, 192, 1);
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let out = dir.join("out");
    for (signal, code) in [
        (libc::SIGINT, Some(130)),
        (libc::SIGTERM, Some(143)),
        (libc::SIGKILL, None),
    ] {
        // Into an existing directory, and into one the run creates (two levels deep).
        let existing = out.join(format!("existing{signal}"));
        std::fs::create_dir_all(&existing).unwrap();
        let created = out.join(format!("new{signal}"));
        for (target, watch) in [
            (existing.join("c"), existing.clone()),
            (created.join("deep/c"), created.join("deep")),
        ] {
            let status = interrupt(
                &[
                    "compress",
                    npy.to_str().unwrap(),
                    "-o",
                    target.to_str().unwrap(),
                    "--quant",
                    "none",
                    "--engine",
                    "reference",
                    "--batch",
                    "2",
                    "--quiet",
                ],
                &watch,
                signal,
            );
            assert_eq!(status.code(), code, "signal {signal}");
            let left = entries(&watch);
            let finals: Vec<_> = left
                .iter()
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect();
            assert!(
                finals.is_empty(),
                "signal {signal}: outputs left: {finals:?}"
            );
            if signal != libc::SIGKILL {
                assert!(
                    left.is_empty(),
                    "signal {signal}: temporaries left: {left:?}"
                );
            }
        }
        if signal != libc::SIGKILL {
            assert!(
                !created.exists(),
                "signal {signal}: the directories it created stay"
            );
        }
    }
    let stem = out.join("c");
    let (npy_s, stem_s) = (npy.to_str().unwrap(), stem.to_str().unwrap());
    // Decompress: a real container, interrupted while writing the .npy.
    let o = common::dctchop(&["compress", npy_s, "-o", stem_s, "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back = dir.join("back");
    std::fs::create_dir_all(&back).unwrap();
    let target = back.join("x.npy");
    let status = interrupt(
        &[
            "decompress",
            stem_s,
            "-o",
            target.to_str().unwrap(),
            "--engine",
            "reference",
            "--quiet",
        ],
        &back,
        libc::SIGINT,
    );
    assert_eq!(status.code(), Some(130));
    assert!(entries(&back).is_empty(), "{:?}", entries(&back));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = common::fresh_dir("faults", "pipe");
    let o = common::dctchop(&[
        "export",
        "--cf",
        "4",
        "--res",
        "64",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let graph = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".compress.onnx"))
        .unwrap();
    for args in [
        vec!["inspect", graph.to_str().unwrap()],
        vec!["inspect", graph.to_str().unwrap(), "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dctchop"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away, like `| head -0`
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tmpfs of `size` mounted at `dir` for the life of the value (needs root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one, or says why it cannot: a failure where `DCTCHOP_REQUIRE_TMPFS=1` (`.ci/run`
    /// sets it once it has mounted a tmpfs itself), reported and skipped otherwise.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("DCTCHOP_REQUIRE_TMPFS").as_deref() != Ok("1"),
                    "the full-disk test needs to mount a tmpfs (root): {why}"
                );
                eprintln!("SKIPPED full-disk test: cannot mount a tmpfs ({why}); run as root");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_nothing_behind() {
    let dir = common::fresh_dir("faults", "full_disk");
    let npy = dir.join("x.npy");
    // 3.1 MB of float32 whose float coefficients at CF = block are as large: over the 1 MiB disk.
    let x = common::image(16, 3, 128, 128, 5);
    dctchop::npy::write_npy(&npy, x.view().into_dyn(), dctchop::Dtype::F32, true).unwrap();
    let stem = dir.join("c");
    let (npy_s, stem_s) = (npy.to_str().unwrap(), stem.to_str().unwrap());
    let o = common::dctchop(&["compress", npy_s, "-o", stem_s, "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = dir.join("full");
    let Some(_mounted) = Tmpfs::mount(&full, "1m") else {
        return;
    };
    let compress = ["compress", npy_s, "--quant", "none", "--cf", "8", "-o"];
    let export = [
        "export", "--res", "512", "--cf", "8", "--tile", "full", "-o",
    ];
    // Decompression writes large outputs with O_DIRECT (where the file system takes it):
    // forced here for this small one.
    let direct: &[(&str, &str)] = &[("DCTCHOP_DIRECT_MIN_BYTES", "0")];
    type Env<'a> = &'a [(&'a str, &'a str)];
    let runs: [(&str, &[&str], &str, Env); 5] = [
        ("compress", &compress, "c", &[]),
        (
            "compress into a directory it creates",
            &compress,
            "new/deeper/c",
            &[],
        ),
        ("decompress", &["decompress", stem_s, "-o"], "x.npy", &[]),
        (
            "decompress, O_DIRECT",
            &["decompress", stem_s, "-o"],
            "x.npy",
            direct,
        ),
        ("export", &export, "g", &[]),
    ];
    for (what, head, target, env) in runs {
        let target = full.join(target);
        let args: Vec<&str> = head
            .iter()
            .copied()
            .chain([target.to_str().unwrap()])
            .collect();
        let o = common::dctchop_env(&args, env);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
        assert!(
            err.contains("No space left") && err.contains(full.to_str().unwrap()),
            "{what}: names the cause and the file: {err}"
        );
        assert!(
            entries(&full).is_empty(),
            "{what}: left behind: {:?}",
            entries(&full)
        );
    }
    drop(_mounted);
    std::fs::remove_dir_all(&dir).unwrap();
}
