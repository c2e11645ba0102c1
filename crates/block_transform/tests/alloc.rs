//! Proof that the transform calls allocate nothing in steady state, on any
//! thread (the pool's workers included): a counting global allocator.
//! This binary holds a single test so nothing else allocates concurrently.

use block_transform::{BlockTransform, Keep};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn kernels_do_not_allocate_after_first_call() {
    // (planes, h, w): many small planes and one large plane, both multi-threaded.
    for (planes, h, w) in [(64, 64, 64), (1, 1024, 1000), (5, 37, 300)] {
        for (b, c) in [(8, 4), (32, 7), (4, 1)] {
            for variant in [Keep::Grid, Keep::triangle(c)] {
                for threads in [1, 2, 3] {
                    let plan = BlockTransform::dct(h, w, b, c, variant.clone(), threads).unwrap();
                    let x: Vec<f32> = (0..planes * h * w).map(|i| (i % 251) as f32).collect();
                    let mut xo = vec![0.0f32; x.len()];
                    let n = planes * plan.plane_coeffs();
                    let (mut y, mut q8, mut q16) = (vec![0.0f32; n], vec![0i8; n], vec![0i16; n]);
                    let mut run = || {
                        plan.compress(&x, planes, &mut y).unwrap();
                        plan.decompress(&y, planes, &mut xo).unwrap();
                        plan.compress_codes(&x, planes, &mut q8).unwrap();
                        plan.decompress_codes(&q8, planes, &mut xo).unwrap();
                        plan.compress_codes(&x, planes, &mut q16).unwrap();
                        plan.decompress_codes(&q16, planes, &mut xo).unwrap();
                    };
                    run(); // first call: allowed to allocate (nothing does today)
                    let before = ALLOCS.load(Ordering::SeqCst);
                    let runs_before = plan.worker_runs();
                    for _ in 0..20 {
                        run();
                    }
                    let after = ALLOCS.load(Ordering::SeqCst);
                    // The pool really took part (the small 37×300 case runs inline).
                    if threads > 1 && h >= 64 {
                        assert!(plan.worker_runs() > runs_before, "pool unused");
                    }
                    assert_eq!(
                        after - before,
                        0,
                        "{planes}x{h}x{w} b={b} c={c} {variant:?} threads={threads}"
                    );
                }
            }
        }
    }

    // Sanity (done last so its thread teardown cannot overlap a measurement):
    // the counter sees allocations made on other threads.
    let before = ALLOCS.load(Ordering::SeqCst);
    std::thread::spawn(|| std::hint::black_box(vec![1u8; 100]))
        .join()
        .unwrap();
    assert!(ALLOCS.load(Ordering::SeqCst) > before);
}
