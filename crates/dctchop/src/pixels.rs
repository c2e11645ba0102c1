//! Batches of original samples as the transform reads them: f32, or integer samples (`uint8`,
//! `uint16`, `int16`) kept in their own type. The native engine converts integer samples as it
//! loads them (exactly), so an 8-bit dataset is read, transformed and compared with its round
//! trip at one byte per sample instead of four; other engines get them converted to f32.

use ndarray::{Array4, ArrayView4, CowArray, Ix4};

/// An owned batch `[N, C, H, W]` of original samples.
#[derive(Clone, Debug)]
pub enum Pixels {
    F32(Array4<f32>),
    U8(Array4<u8>),
    U16(Array4<u16>),
    I16(Array4<i16>),
}

/// A borrowed batch `[N, C, H, W]` of original samples.
#[derive(Clone, Copy, Debug)]
pub enum PixelsView<'a> {
    F32(ArrayView4<'a, f32>),
    U8(ArrayView4<'a, u8>),
    U16(ArrayView4<'a, u16>),
    I16(ArrayView4<'a, i16>),
}

/// `$body` with `$a` bound to the array of whichever variant `$v` holds.
macro_rules! each_pixels {
    ($ty:ident, $v:expr, $a:ident => $body:expr) => {
        match $v {
            $ty::F32($a) => $body,
            $ty::U8($a) => $body,
            $ty::U16($a) => $body,
            $ty::I16($a) => $body,
        }
    };
}

/// `$body` with `$s` bound to the samples of the view `$v` as a contiguous slice (of whichever
/// element type it holds; copied only when the view is not in standard layout).
macro_rules! each_pixel_slice {
    ($v:expr, $s:ident => $body:expr) => {
        match $v {
            $crate::pixels::PixelsView::F32(a) => $crate::pixels::each_pixel_slice!(@ a, $s, $body),
            $crate::pixels::PixelsView::U8(a) => $crate::pixels::each_pixel_slice!(@ a, $s, $body),
            $crate::pixels::PixelsView::U16(a) => $crate::pixels::each_pixel_slice!(@ a, $s, $body),
            $crate::pixels::PixelsView::I16(a) => $crate::pixels::each_pixel_slice!(@ a, $s, $body),
        }
    };
    (@ $a:ident, $s:ident, $body:expr) => {{
        let a = $a.as_standard_layout();
        let $s = a.as_slice().expect("standard layout");
        $body
    }};
}
pub(crate) use each_pixel_slice;

impl Pixels {
    pub fn view(&self) -> PixelsView<'_> {
        match self {
            Pixels::F32(a) => PixelsView::F32(a.view()),
            Pixels::U8(a) => PixelsView::U8(a.view()),
            Pixels::U16(a) => PixelsView::U16(a.view()),
            Pixels::I16(a) => PixelsView::I16(a.view()),
        }
    }

    pub fn shape(&self) -> &[usize] {
        each_pixels!(Pixels, self, a => a.shape())
    }

    /// The samples as f32 (a copy unless they are f32 already).
    pub fn into_f32(self) -> Array4<f32> {
        match self {
            Pixels::F32(a) => a,
            p => p.view().to_f32().into_owned(),
        }
    }

    /// In standard (C) layout.
    pub fn standard(self) -> Pixels {
        fn st<T: Clone>(a: Array4<T>) -> Array4<T> {
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned()
            }
        }
        match self {
            Pixels::F32(a) => Pixels::F32(st(a)),
            Pixels::U8(a) => Pixels::U8(st(a)),
            Pixels::U16(a) => Pixels::U16(st(a)),
            Pixels::I16(a) => Pixels::I16(st(a)),
        }
    }
}

impl<'a> PixelsView<'a> {
    pub fn shape(&self) -> &[usize] {
        each_pixels!(PixelsView, self, a => a.shape())
    }

    pub fn is_standard_layout(&self) -> bool {
        each_pixels!(PixelsView, self, a => a.is_standard_layout())
    }

    /// Samples `range` (axis 0).
    pub fn samples(self, range: std::ops::Range<usize>) -> PixelsView<'a> {
        let s = ndarray::s![range, .., .., ..];
        match self {
            PixelsView::F32(a) => PixelsView::F32(a.slice_move(s)),
            PixelsView::U8(a) => PixelsView::U8(a.slice_move(s)),
            PixelsView::U16(a) => PixelsView::U16(a.slice_move(s)),
            PixelsView::I16(a) => PixelsView::I16(a.slice_move(s)),
        }
    }

    /// The samples as f32: borrowed when they are f32, else converted (exactly).
    pub fn to_f32(self) -> CowArray<'a, f32, Ix4> {
        match self {
            PixelsView::F32(a) => CowArray::from(a),
            PixelsView::U8(a) => CowArray::from(a.mapv(f32::from)),
            PixelsView::U16(a) => CowArray::from(a.mapv(f32::from)),
            PixelsView::I16(a) => CowArray::from(a.mapv(f32::from)),
        }
    }
}

macro_rules! view_from {
    ($($t:ty => $v:ident),*) => {$(
        impl<'a> From<ArrayView4<'a, $t>> for PixelsView<'a> {
            fn from(a: ArrayView4<'a, $t>) -> Self {
                PixelsView::$v(a)
            }
        }
    )*};
}
view_from!(f32 => F32, u8 => U8, u16 => U16, i16 => I16);

impl<'a> From<&'a Pixels> for PixelsView<'a> {
    fn from(p: &'a Pixels) -> Self {
        p.view()
    }
}
