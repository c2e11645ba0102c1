//! One memory budget for every command (`--max-memory-mb`): before a large allocation, the bytes
//! it needs are computed from declared shapes (a container's metadata, a graph's tensors, an
//! image's or a `.npy`'s header) and compared with the budget, so a crafted or merely huge input
//! is refused with a one-line [`Error::TooLarge`] instead of aborting in the allocator.
//!
//! Sizes are computed with checked arithmetic ([`bytes_of`]): a shape whose byte count overflows
//! `u64` is reported as an overflow, never wrapped into a small or empty size.

use std::path::Path;

use crate::error::{Error, Result};

/// The default `--max-memory-mb` of every command.
pub const DEFAULT_MB: u64 = 4096;

/// A memory budget in MB (10^6 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    mb: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { mb: DEFAULT_MB }
    }
}

/// This machine's physical memory in MB (10^6 bytes), when the OS tells.
pub fn physical_memory_mb() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system constants.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return Some((pages as u64).saturating_mul(size as u64) / 1_000_000);
        }
    }
    None
}

impl Budget {
    /// A budget of `mb` MB: 1 up to this machine's physical memory (an allocation beyond it
    /// cannot succeed, it aborts the process).
    pub fn new(mb: u64) -> Result<Budget> {
        let max = physical_memory_mb().unwrap_or(u64::MAX / 1_000_000).max(1);
        if mb == 0 || mb > max {
            return Err(Error::invalid_option(
                "--max-memory-mb",
                mb,
                format!("1..={max} (MB; at most this machine's physical memory)"),
            ));
        }
        Ok(Budget { mb })
    }

    /// The budget in MB.
    pub fn mb(self) -> u64 {
        self.mb
    }

    /// The budget in bytes.
    pub fn bytes(self) -> u64 {
        self.mb.saturating_mul(1_000_000)
    }

    /// Refuse `need` bytes (None: the size overflows) for `what` of `path` when over the budget;
    /// `hint` says what to do instead (e.g. "lower --batch").
    pub fn check(self, path: &Path, what: &str, need: Option<u64>, hint: &str) -> Result<()> {
        let hint = if hint.is_empty() {
            String::new()
        } else {
            format!("; {hint}")
        };
        match need {
            None => Err(Error::TooLarge {
                path: path.to_path_buf(),
                message: format!("{what}: its size in bytes overflows (a crafted or corrupt size)"),
            }),
            Some(n) if n > self.bytes() => Err(Error::TooLarge {
                path: path.to_path_buf(),
                message: format!(
                    "too large for the memory cap: {what} needs about {} MB, over \
                     --max-memory-mb {}{hint}",
                    n.div_ceil(1_000_000),
                    self.mb
                ),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Elements of `shape` (None on overflow).
pub fn elems(shape: &[usize]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))
}

/// Bytes of a tensor of `shape` with `elem` bytes per element (None on overflow).
pub fn bytes_of(shape: &[usize], elem: usize) -> Option<u64> {
    elems(shape)?.checked_mul(elem as u64)
}

/// Sum of sizes, None when any is None or the sum overflows.
pub fn sum(parts: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    parts
        .into_iter()
        .try_fold(0u64, |a, b| b.and_then(|b| a.checked_add(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_messages() {
        assert!(Budget::new(0)
            .unwrap_err()
            .to_string()
            .contains("--max-memory-mb = 0"));
        let e = Budget::new(u64::MAX).unwrap_err().to_string();
        assert!(e.contains("allowed is 1..="), "{e}");
        let b = Budget::new(1).unwrap();
        let p = Path::new("x.npy");
        assert!(b.check(p, "a batch", Some(1_000_000), "").is_ok());
        let e = b
            .check(p, "a batch", Some(1_000_001), "lower --batch")
            .unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with("x.npy: too large") && e.ends_with("lower --batch"),
            "{e}"
        );
        let e = b.check(p, "a batch", None, "").unwrap_err().to_string();
        assert!(e.contains("overflows"), "{e}");
        assert_eq!(bytes_of(&[usize::MAX, 2], 1), None);
        assert_eq!(bytes_of(&[3, 4], 4), Some(48));
        assert_eq!(sum([Some(1), Some(2)]), Some(3));
        assert_eq!(sum([Some(1), None]), None);
        assert_eq!(sum([Some(u64::MAX), Some(1)]), None);
    }
}
