"""Unit tests of the simulated-micrograph generator: python -m pytest downstream"""

import dataclasses
import math

import numpy as np
import pytest

import emsim
from emsim import SimConfig


@pytest.fixture(scope="module")
def small():
    return emsim.make_dataset(6, seed=123)


def test_shapes_and_dtypes(small):
    clean, noisy, metas = small
    assert clean.shape == noisy.shape == (6, 1, 256, 256)
    assert clean.dtype == noisy.dtype == np.float32
    assert len(metas) == 6


def test_deterministic_from_seed_and_prefix_stable(small):
    clean, noisy, _ = small
    c2, n2, _ = emsim.make_dataset(6, seed=123)
    assert np.array_equal(clean, c2) and np.array_equal(noisy, n2)
    # sample i depends on (seed, i) only: a prefix of a larger set is the smaller set
    c3, n3, _ = emsim.make_dataset(3, seed=123)
    assert np.array_equal(clean[:3], c3) and np.array_equal(noisy[:3], n3)
    c4, _, _ = emsim.make_dataset(1, seed=124)
    assert not np.array_equal(clean[0], c4[0])


def test_value_ranges(small):
    clean, noisy, metas = small
    assert np.isfinite(clean).all() and np.isfinite(noisy).all()
    for i, m in enumerate(metas):
        c = clean[i, 0]
        # background floor, atom peaks ~1 (+ background, small overlap of neighbours)
        assert c.min() >= m["background"] - 1e-6
        assert 0.9 < c.max() < 1.0 + m["background"] + 0.3
    # noisy values: counts / dose, read noise may push a few slightly below 0
    assert noisy.min() > -1.0 and noisy.max() < 10.0


def test_noisy_is_digitised(small):
    _, noisy, _ = small
    k = noisy.astype(np.float64) / emsim.NOISY_QUANTUM
    assert np.array_equal(k, np.round(k))


def test_noise_is_unbiased_and_dose_scaled():
    cfg = SimConfig()
    # same atoms and blobs, two doses: E[noisy] = clean, Var ~ clean / dose + (read / dose)^2
    ss = np.random.SeedSequence(7)
    for dose in (5.0, 50.0):
        c = dataclasses.replace(cfg, dose=(dose, dose), read_noise=(1.0, 1.0))
        clean, noisy, m = emsim.simulate_pair(ss, c)
        r = noisy.astype(np.float64) - clean
        assert abs(r.mean()) < 4 * math.sqrt((clean.mean() / dose + 1 / dose**2) / r.size)
        want = clean.mean() / dose + 1.0 / dose**2 + emsim.NOISY_QUANTUM**2 / 12
        assert abs(r.var() / want - 1) < 0.05, (dose, r.var(), want)


def test_lattice_geometry():
    """Nearest-neighbour distance of an unstrained, defect-free grain is the C-C bond 1.42 A,
    and every atom has 3 neighbours at that distance (honeycomb)."""
    cfg = SimConfig(max_strain=0.0)
    pts = emsim.lattice_grain(np.random.default_rng(0), cfg, 0.3, 12.0, np.zeros(2))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    inner = np.sqrt((pts**2).sum(-1)) < 8.0
    nn = d[inner].min(axis=1)
    assert np.allclose(nn, emsim.CC_BOND, atol=1e-9)
    assert ((np.abs(d[inner] - emsim.CC_BOND) < 1e-6).sum(axis=1) == 3).all()
    assert math.isclose(emsim.CC_BOND, 1.42, abs_tol=0.005)


def test_strain_changes_spacing():
    cfg = SimConfig(max_strain=0.02)
    pts = emsim.lattice_grain(np.random.default_rng(1), cfg, 0.0, 12.0, np.zeros(2))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nn = d[np.sqrt((pts**2).sum(-1)) < 8.0].min(axis=1)
    assert not np.allclose(nn, emsim.CC_BOND, atol=1e-4)  # strained
    assert np.all(np.abs(nn / emsim.CC_BOND - 1) < 0.05)  # but by a few percent at most


def test_vacancies_remove_atoms_and_darken():
    base = SimConfig(p_vac=(0.0, 0.0), holes_mean=0.0, p_gb=0.0)
    holes = dataclasses.replace(base, p_vac=(0.05, 0.05), holes_mean=3.0)
    ss = np.random.SeedSequence(11)
    c0, _, m0 = emsim.simulate_pair(ss, base)
    c1, _, m1 = emsim.simulate_pair(ss, holes)
    assert m0["removed_atoms"] == 0 and m1["removed_atoms"] > 0
    assert m1["atoms_in_fov"] < m0["atoms_in_fov"]
    assert c1.mean() < c0.mean()  # fewer atoms, less signal


def test_grain_boundary_two_orientations():
    """With a boundary, atoms on the two sides belong to lattices rotated by the misorientation;
    no two atoms end up closer than d_min across it."""
    cfg = SimConfig(p_gb=1.0, p_vac=(0.0, 0.0), holes_mean=0.0, thermal_rms=0.0,
                    ripple_amp=(0.0, 0.0))
    pts, meta = emsim.atom_positions(np.random.default_rng(5), cfg)
    assert meta["grain_boundary"] and 5 <= abs(meta["misorientation_deg"]) <= 30
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= cfg.d_min - 1e-9
    # bond directions on each side, mod 60 degrees: one dominant angle per side, differing
    p0, nrm = np.array(meta["boundary_point"]), np.array(meta["boundary_normal"])
    side = (pts - p0) @ nrm
    angles = []
    for sel in (side < -5, side > 5):
        p = pts[sel]
        dd = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1))
        np.fill_diagonal(dd, np.inf)
        i, j = np.nonzero(np.abs(dd - emsim.CC_BOND) < 0.1 * emsim.CC_BOND)
        v = p[j] - p[i]
        a = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 60.0
        hist, edges = np.histogram(a, bins=60, range=(0, 60))
        angles.append(edges[np.argmax(hist)])
    diff = abs(angles[0] - angles[1]) % 60.0
    diff = min(diff, 60.0 - diff)
    mis = abs(meta["misorientation_deg"]) % 60.0
    assert abs(diff - min(mis, 60 - mis)) < 3.0, (angles, meta["misorientation_deg"])


def test_write_npy_and_h5(tmp_path, small):
    clean, noisy, metas = small
    paths = emsim.write_dataset(tmp_path / "npy", clean, noisy, metas, "npy")
    assert np.array_equal(np.load(paths[0]), clean)
    h5py = pytest.importorskip("h5py")
    paths = emsim.write_dataset(tmp_path / "h5", clean, noisy, metas, "h5")
    with h5py.File(paths[1], "r") as f:
        assert f["images"].shape == (6, 256, 256, 1)  # channel-last, as SciML-Bench's files
        assert np.array_equal(f["images"][:, :, :, 0], noisy[:, 0])
