"""Simulated graphene micrographs: clean/noisy pairs in the spirit of SciML-Bench's em_graphene_sim.

Physics (see downstream/README.md for what is and is not modelled):

* Graphene lattice: hexagonal Bravais lattice, a = 2.46 Angstrom, two-atom basis at (0,0) and
  (a1 + a2)/3, so the C-C bond is a/sqrt(3) = 1.42 Angstrom.
* Each grain: random in-plane rotation (uniform over the 60 degree symmetry period), a random
  homogeneous strain tensor (|eps_ij| <= max_strain), a random lattice origin, a long-wavelength
  ripple displacement (sinusoidal, amplitude ~0.1-0.2 Angstrom) and thermal jitter of every atom
  (Gaussian, ~0.05 Angstrom rms per axis, a frozen-phonon snapshot).
* Defects: point vacancies (each atom removed with probability p_vac), a few multi-atom holes
  (all atoms within 1.5-4 Angstrom of a random centre removed) and, with probability p_gb, a
  grain boundary: a random straight line splits the field into two grains of different rotation
  (misorientation 5-30 degrees); atoms that come closer than d_min to an atom of the other grain
  are dropped (no relaxation into 5-7 rings: that is left out).
* Imaging: incoherent (HAADF-STEM-like) image = sum of one Gaussian probe blob per atom (all C
  atoms equal; FWHM ~0.95-1.3 Angstrom) plus a weak constant background; units: an isolated
  atom peaks at 1.
* Noise: shot noise, Poisson with the per-image dose D (electrons per pixel for intensity 1),
  plus Gaussian read noise (sigma_read electrons); noisy = (Poisson(D * clean) + N(0, s^2)) / D,
  so E[noisy] = clean and both live in the same units; noisy is digitised to multiples of
  NOISY_QUANTUM = 1/256.

Everything is deterministic from (seed, index): sample i draws from SeedSequence(seed).spawn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

A_LATTICE = 2.46  # Angstrom, graphene lattice constant
# The detector output is digitised: noisy values are multiples of this (intensity units; 8
# fractional bits). Far below the noise (>= 0.04 rms here), and it gives the data an exact grid:
# a round trip within 1/512 of the data snaps back to it bit for bit (used by run.py --smoke).
NOISY_QUANTUM = 2.0**-8
GENERATOR_VERSION = 1
CC_BOND = A_LATTICE / math.sqrt(3.0)  # 1.42 Angstrom


@dataclasses.dataclass(frozen=True)
class SimConfig:
    size: int = 256  # pixels (square)
    pixel_size: float = 0.2  # Angstrom per pixel: 51.2 Angstrom field, C-C bond = 7.1 px
    probe_fwhm: tuple[float, float] = (0.95, 1.3)  # Angstrom, uniform per image
    max_strain: float = 0.02  # |eps_xx|, |eps_yy|, |eps_xy| <= this
    ripple_amp: tuple[float, float] = (0.0, 0.2)  # Angstrom
    ripple_wavelength: tuple[float, float] = (20.0, 60.0)  # Angstrom
    thermal_rms: float = 0.05  # Angstrom per axis
    p_vac: tuple[float, float] = (0.0, 0.02)  # vacancy probability per atom, uniform per image
    holes_mean: float = 0.7  # Poisson mean of multi-atom holes per image
    hole_radius: tuple[float, float] = (1.5, 4.0)  # Angstrom
    p_gb: float = 0.5  # probability of a grain boundary in the field
    misorientation: tuple[float, float] = (5.0, 30.0)  # degrees
    d_min: float = 1.1  # Angstrom: closer atoms across a boundary are merged (one dropped)
    background: tuple[float, float] = (0.02, 0.10)  # constant background, units of atom peak
    dose: tuple[float, float] = (5.0, 30.0)  # electrons / pixel at intensity 1, log-uniform
    read_noise: tuple[float, float] = (0.5, 2.0)  # electrons rms, uniform

    def key(self) -> str:
        """Cache key: the parameters and GENERATOR_VERSION (bump it when the code's output changes)."""
        blob = json.dumps([GENERATOR_VERSION, dataclasses.asdict(self)], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def lattice_grain(rng: np.random.Generator, cfg: SimConfig, theta: float, radius: float,
                  centre: np.ndarray) -> np.ndarray:
    """Atom positions (Angstrom, shape [N, 2]) of one strained, rotated grain covering a disc."""
    a1 = np.array([A_LATTICE, 0.0])
    a2 = np.array([A_LATTICE / 2.0, A_LATTICE * math.sqrt(3.0) / 2.0])
    basis = np.array([[0.0, 0.0], (a1 + a2) / 3.0])
    # lattice indices covering the disc (strain <= few % and rotation: generous margin)
    m = int(math.ceil(radius / (A_LATTICE * math.sqrt(3.0) / 2.0) * 1.2)) + 2
    i, j = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
    cells = i.reshape(-1, 1) * a1 + j.reshape(-1, 1) * a2
    pts = (cells[:, None, :] + basis[None, :, :]).reshape(-1, 2)
    pts = pts + rng.uniform(0.0, 1.0, 2) @ np.stack([a1, a2])  # random lattice origin
    eps = rng.uniform(-cfg.max_strain, cfg.max_strain, 3)
    strain = np.array([[1.0 + eps[0], eps[2]], [eps[2], 1.0 + eps[1]]])
    pts = pts @ (strain @ _rot(theta)).T
    pts = pts[np.einsum("ij,ij->i", pts, pts) <= radius * radius] + centre
    return pts


def atom_positions(rng: np.random.Generator, cfg: SimConfig) -> tuple[np.ndarray, dict]:
    """All atom positions (Angstrom, [N, 2] as (x, y)) of one field, and what was drawn."""
    fov = cfg.size * cfg.pixel_size
    centre = np.array([fov / 2.0, fov / 2.0])
    radius = fov / math.sqrt(2.0) + 3.0
    theta1 = rng.uniform(0.0, math.pi / 3.0)
    meta: dict = {"theta_deg": math.degrees(theta1), "grain_boundary": False}
    pts = lattice_grain(rng, cfg, theta1, radius, centre)
    if rng.uniform() < cfg.p_gb:
        mis = math.radians(rng.uniform(*cfg.misorientation)) * rng.choice([-1.0, 1.0])
        other = lattice_grain(rng, cfg, theta1 + mis, radius, centre)
        # boundary: line through a point near the centre with a random direction
        p0 = centre + rng.uniform(-0.25, 0.25, 2) * fov
        phi = rng.uniform(0.0, math.pi)
        normal = np.array([-math.sin(phi), math.cos(phi)])
        s1 = (pts - p0) @ normal
        s2 = (other - p0) @ normal
        pts, other, s1, s2 = pts[s1 < 0], other[s2 >= 0], s1[s1 < 0], s2[s2 >= 0]
        # drop atoms of grain 2 that sit closer than d_min to an atom of grain 1 (only near the line)
        near1, near2 = pts[s1 > -2 * cfg.d_min], other[s2 < 2 * cfg.d_min]
        keep = np.ones(len(other), dtype=bool)
        if len(near1) and len(near2):
            d2 = ((near2[:, None, :] - near1[None, :, :]) ** 2).sum(-1).min(axis=1)
            idx = np.flatnonzero(s2 < 2 * cfg.d_min)
            keep[idx[d2 < cfg.d_min ** 2]] = False
        meta.update(grain_boundary=True, misorientation_deg=math.degrees(mis),
                    boundary_point=p0.tolist(), boundary_normal=normal.tolist(),
                    merged_atoms=int((~keep).sum()))
        pts = np.concatenate([pts, other[keep]])
    # long-wavelength ripple (in-plane projection of an out-of-plane corrugation)
    amp = rng.uniform(*cfg.ripple_amp)
    lam = rng.uniform(*cfg.ripple_wavelength)
    kdir = _rot(rng.uniform(0.0, 2 * math.pi)) @ np.array([1.0, 0.0])
    phase = rng.uniform(0.0, 2 * math.pi)
    pts = pts + amp * np.sin(2 * math.pi / lam * (pts @ kdir) + phase)[:, None] * kdir
    # thermal jitter (frozen phonon snapshot)
    pts = pts + rng.normal(0.0, cfg.thermal_rms, pts.shape)
    # vacancies and holes
    n0 = len(pts)
    p_vac = rng.uniform(*cfg.p_vac)
    keep = rng.uniform(size=len(pts)) >= p_vac
    n_holes = int(rng.poisson(cfg.holes_mean))
    for _ in range(n_holes):
        c = rng.uniform(0.0, fov, 2)
        r = rng.uniform(*cfg.hole_radius)
        keep &= ((pts - c) ** 2).sum(-1) > r * r
    pts = pts[keep]
    meta.update(p_vac=p_vac, holes=n_holes, removed_atoms=int(n0 - len(pts)),
                ripple_amp=amp, ripple_wavelength=lam)
    return pts, meta


def render(pts: np.ndarray, cfg: SimConfig, fwhm: float, background: float) -> np.ndarray:
    """Sum of Gaussian probe blobs (peak 1 each) on an [size, size] grid, plus background."""
    n = cfg.size
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / cfg.pixel_size  # pixels
    w = int(math.ceil(4.0 * sigma))
    xy = pts / cfg.pixel_size - 0.5  # pixel centres at integer + 0.5 Angstrom/pixel
    xy = xy[(xy[:, 0] > -w) & (xy[:, 0] < n + w) & (xy[:, 1] > -w) & (xy[:, 1] < n + w)]
    base = np.floor(xy).astype(np.int64)
    off = np.arange(-w, w + 1)
    ix = base[:, 0:1] + off  # [N, K] column indices
    iy = base[:, 1:2] + off  # [N, K] row indices
    gx = np.exp(-((ix - xy[:, 0:1]) ** 2) / (2 * sigma * sigma))
    gy = np.exp(-((iy - xy[:, 1:2]) ** 2) / (2 * sigma * sigma))
    vals = gy[:, :, None] * gx[:, None, :]
    rows = np.broadcast_to(iy[:, :, None], vals.shape)
    cols = np.broadcast_to(ix[:, None, :], vals.shape)
    ok = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    img = np.bincount((rows[ok] * n + cols[ok]), weights=vals[ok], minlength=n * n)
    return (img.reshape(n, n) + background).astype(np.float64)


def simulate_pair(seed_seq: np.random.SeedSequence, cfg: SimConfig = SimConfig()):
    """One (clean, noisy, meta) sample; clean and noisy are float32 [size, size]."""
    rng = np.random.default_rng(seed_seq)
    pts, meta = atom_positions(rng, cfg)
    fwhm = rng.uniform(*cfg.probe_fwhm)
    bg = rng.uniform(*cfg.background)
    clean = render(pts, cfg, fwhm, bg)
    dose = math.exp(rng.uniform(math.log(cfg.dose[0]), math.log(cfg.dose[1])))
    read = rng.uniform(*cfg.read_noise)
    counts = rng.poisson(dose * clean) + rng.normal(0.0, read, clean.shape)
    noisy = np.round(counts / dose / NOISY_QUANTUM) * NOISY_QUANTUM
    fov = cfg.size * cfg.pixel_size
    in_fov = int(((pts >= 0) & (pts < fov)).all(axis=1).sum())
    meta.update(atoms_in_fov=in_fov, probe_fwhm=fwhm, background=bg, dose=dose, read_noise=read)
    return clean.astype(np.float32), noisy.astype(np.float32), meta


def make_dataset(n: int, seed: int, cfg: SimConfig = SimConfig()):
    """n pairs as float32 arrays [n, 1, size, size] (clean, noisy) and a list of metadata.
    Sample i depends only on (seed, i, cfg): a prefix of a larger dataset is the smaller one."""
    seqs = np.random.SeedSequence(seed).spawn(n)
    clean = np.empty((n, 1, cfg.size, cfg.size), np.float32)
    noisy = np.empty_like(clean)
    metas = []
    for i, ss in enumerate(seqs):
        c, y, m = simulate_pair(ss, cfg)
        clean[i, 0], noisy[i, 0] = c, y
        metas.append(m)
    return clean, noisy, metas


def write_dataset(out_dir: Path, clean: np.ndarray, noisy: np.ndarray, metas: list,
                  fmt: str = "npy") -> list[Path]:
    """Write a split as clean.npy/noisy.npy [N, 1, H, W] (+ meta.json), or as HDF5 files laid
    out like SciML-Bench's em_denoise files (one file per kind, dataset 'images', channel-last
    [N, H, W, 1] float32)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if fmt == "npy":
        for name, arr in (("clean", clean), ("noisy", noisy)):
            p = out_dir / f"{name}.npy"
            np.save(p, arr)
            paths.append(p)
    elif fmt == "h5":
        import h5py

        for name, arr in (("clean", clean), ("noisy", noisy)):
            p = out_dir / f"graphene_img_{name}.h5"
            with h5py.File(p, "w") as f:
                f.create_dataset("images", data=arr.transpose(0, 2, 3, 1),
                                 chunks=(1,) + arr.shape[2:] + (1,))
            paths.append(p)
    else:
        raise ValueError(f"unknown format {fmt!r} (npy or h5)")
    p = out_dir / "meta.json"
    p.write_text(json.dumps(metas, indent=0))
    paths.append(p)
    return paths


def load_or_make(cache: Path, split: str, n: int, seed: int, cfg: SimConfig = SimConfig()):
    """(clean, noisy) of a split, cached under cache/<cfg key>-<seed>-<n>/<split>."""
    d = cache / f"emsim-{cfg.key()}-s{seed}-n{n}" / split
    if (d / "clean.npy").exists() and (d / "noisy.npy").exists():
        return np.load(d / "clean.npy"), np.load(d / "noisy.npy")
    clean, noisy, metas = make_dataset(n, seed, cfg)
    write_dataset(d, clean, noisy, metas)
    return clean, noisy


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description="Write a simulated graphene micrograph dataset.")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=["npy", "h5"], default="npy")
    ap.add_argument("--png", action="store_true", help="also write a preview PNG of 4 pairs")
    a = ap.parse_args(argv)
    clean, noisy, metas = make_dataset(a.n, a.seed)
    for p in write_dataset(a.out, clean, noisy, metas, a.format):
        print("wrote", p)
    if a.png:
        p = preview_png(a.out / "preview.png", clean, noisy, metas)
        print("wrote", p)


def preview_png(path: Path, clean, noisy, metas, k: int = 4) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = min(k, len(clean))
    fig, ax = plt.subplots(2, k, figsize=(3 * k, 6.2))
    ax = np.array(ax).reshape(2, k)
    for i in range(k):
        m = metas[i]
        ax[0, i].imshow(clean[i, 0], cmap="gray")
        ax[0, i].set_title(f"clean: {m['atoms_in_fov']} atoms" + (", GB" if m["grain_boundary"] else ""),
                           fontsize=8)
        ax[1, i].imshow(noisy[i, 0], cmap="gray")
        ax[1, i].set_title(f"noisy: dose {m['dose']:.0f} e/px", fontsize=8)
        for a in ax[:, i]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
