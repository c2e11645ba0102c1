// Shared by the fuzz targets (included with `include!`): a per-process scratch file.

/// Write `data` to a scratch file named `name` in a per-process directory (tmpfs when there is
/// one) and return its path.
fn scratch(name: &str, data: &[u8]) -> std::path::PathBuf {
    use std::sync::OnceLock;
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("dctchop-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
