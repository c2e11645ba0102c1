//! Without the `hdf5` feature an HDF5 input fails with a one-line message saying how to enable it.
#![cfg(not(feature = "hdf5"))]

use std::path::PathBuf;

#[test]
fn hdf5_input_without_feature_says_how_to_enable() {
    for spec in ["data.h5:/images", "x/data.HDF5", "data.h5::nhw"] {
        let e = dctchop::input::open(&[PathBuf::from(spec)])
            .unwrap_err()
            .to_string();
        let file = spec.split(':').next().unwrap();
        assert_eq!(
            e,
            format!(
                "{file}: HDF5 input needs dctchop built with `--features hdf5` (apt-get install \
                 libhdf5-dev; cargo install --path . --features hdf5)"
            )
        );
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dctchop"))
        .args(["compress", "nothere.h5:/x", "-o", "/nonexistent/out"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
    assert!(
        msg.contains("nothere.h5: HDF5 input needs dctchop built with `--features hdf5`"),
        "{msg}"
    );
}
