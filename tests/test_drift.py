"""Distribution drift D in given coordinates, per depth decile ([GK]'s global basis and range vs the
per-decile refit), and its label-shuffled baseline as a permutation test.

All inputs are small random filter tensors; nothing is trained.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.science import filters as F

SCALES = torch.linspace(3.0, 0.3, 9)  # anisotropic: per-pixel standard deviations of the 9-vector


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _weight(out: int, cin: int, seed: int, scales: torch.Tensor = SCALES) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (
        (torch.randn(out * cin, 9, generator=g, dtype=torch.float64) * scales)
        .float()
        .reshape(out, cin, 3, 3)
    )


def _rotation(theta: float) -> torch.Tensor:
    """A 9-dim rotation: Givens rotations by ``theta`` in the planes (0, 8), (1, 7), (2, 6), (3, 5).

    Each plane pairs a high-variance with a low-variance axis of :data:`SCALES`, so the rotated set
    moves further away from the original as ``theta`` grows from 0 to pi/2 (axes swapped).
    """
    r = torch.eye(9, dtype=torch.float64)
    c, s = math.cos(theta), math.sin(theta)
    for i, j in ((0, 8), (1, 7), (2, 6), (3, 5)):
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _rotated(w: torch.Tensor, theta: float) -> torch.Tensor:
    return (w.double().reshape(-1, 9) @ _rotation(theta).T).float().reshape(w.shape)


def _record(name: str, w: torch.Tensor, depth: int, norm: float) -> F.ConvRecord:
    return F.ConvRecord(name, w, tuple(w.shape[-2:]), depth, norm, F.decile_label(norm))


# Three depth groups: the first layer ("0"), decile (0.4, 0.5] and decile (0.9, 1.0].
DEPTHS = (0.0, 0.45, 1.0)


def _records(weights: dict[float, list[torch.Tensor]], prefix: str) -> list[F.ConvRecord]:
    out = []
    for k, (norm, ws) in enumerate(weights.items()):
        out += [_record(f"{prefix}{k}_{i}", w, k, norm) for i, w in enumerate(ws)]
    return out


def _groups(seed: int = 0):
    """Robust-like P (anisotropic, structure varying with depth) and normal-like Q records."""
    P = _records(
        {
            d: [
                _weight(16, 8, seed + 10 * k + i, SCALES.flip(0) if k == 1 else SCALES)
                for i in range(2)
            ]
            for k, d in enumerate(DEPTHS)
        },
        "p",
    )
    Q = _records(
        {
            d: [
                _weight(16, 8, seed + 100 + 10 * k + i, torch.ones(9) + 0.5 * (k == 2))
                for i in range(2)
            ]
            for k, d in enumerate(DEPTHS)
        },
        "q",
    )
    return P, Q


def _in_decile(records, label):
    return [r for r in records if r.decile == label]


def _global_coordinates(P, Q):
    basis = F.pca_basis(P + Q)
    return basis, F.coefficient_range(basis.transform(F.prepare_filters(P + Q)))


# --------------------------------------------------------------------------- required properties


@pytest.mark.parametrize("basis", F.DRIFT_BASES)
def test_drift_of_a_set_against_itself_is_zero(basis):
    P, _ = _groups()
    table = F.drift_by_decile(P, P, shuffles=20, basis=basis)
    assert len(table) == 3 and set(table.variant) == {basis}
    assert np.allclose(table.D, 0.0, atol=1e-12)
    assert (table.p_value == 1.0).all()  # every shuffle is >= 0 = D
    p = F.prepare_filters(P)
    b, rng = _global_coordinates(P, P)
    assert F.drift(p, p.clone()) == pytest.approx(0.0, abs=1e-12)
    assert F.drift(p, p.clone(), basis=b, value_range=rng) == pytest.approx(0.0, abs=1e-12)
    assert F.drift_with_baseline(p, p.clone(), shuffles=3)["D"] == pytest.approx(0.0, abs=1e-12)


def test_drift_grows_with_rotation():
    x = _weight(64, 64, 1).reshape(-1, 9)
    # a rotation of each 3x3 kernel by 90 degrees moves the high-variance pixels
    rot = torch.rot90(x.reshape(-1, 3, 3), 1, dims=(1, 2)).reshape(-1, 9)
    assert F.drift(x, x) == pytest.approx(0.0, abs=1e-12)
    assert F.drift(x, rot) > 0.1
    # a family of 9-dim rotations: in the coordinates of P (its PCA, one range for all angles)
    # D increases with the angle
    angles = np.linspace(0, math.pi / 2, 6)
    rotated = [_rotated(x, t) for t in angles]
    assert all(F.drift(x, r) > 0.01 for r in rotated[1:])
    basis = F.pca_basis(x)
    rng = F.coefficient_range(torch.cat([basis.transform(r) for r in [x] + rotated]))
    fixed = [F.drift(x, r, basis=basis, value_range=rng) for r in rotated]
    assert fixed[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in zip(fixed, fixed[1:])), fixed


def test_global_variant_orders_deciles_by_rotation_angle():
    """Decile k holds the same base filters in P and, rotated by angle k, in Q: with one basis and one
    range for all deciles ([GK]), D grows from decile to decile."""
    angles = np.linspace(0, math.pi / 2, 5)
    depths = (0.0, 0.25, 0.45, 0.75, 1.0)
    base = [_weight(16, 16, 7 + i) for i in range(2)]
    P = _records({d: base for d in depths}, "p")
    Q = _records({d: [_rotated(w, t) for w in base] for d, t in zip(depths, angles)}, "q")
    table = F.drift_by_decile(P, Q, shuffles=0)
    assert list(table.decile) == [F.decile_label(d) for d in depths]
    assert table.D.iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert table.D.is_monotonic_increasing and table.D.is_unique, table.D.tolist()


def test_global_variant_uses_one_basis_and_one_range():
    P, Q = _groups()
    table = F.drift_by_decile(P, Q, shuffles=20, seed=3)
    basis, rng = _global_coordinates(P, Q)
    # the table's weights are those of the PCA of all filters of both groups over all deciles
    assert torch.equal(
        torch.tensor(table.attrs["evr"], dtype=torch.float64), basis.explained_variance_ratio
    )
    # one range, shared by c0..c8 and by every decile
    assert rng[0].unique().numel() == 1 and rng[1].unique().numel() == 1
    assert table.attrs["value_range"] == (float(rng[0][0]), float(rng[1][0]))
    local = F.drift_by_decile(P, Q, shuffles=0, basis="per_decile")
    for row, loc in zip(table.itertuples(), local.itertuples()):
        p = F.prepare_filters(_in_decile(P, row.decile))
        q = F.prepare_filters(_in_decile(Q, row.decile))
        assert (row.n_P, row.n_Q) == (len(p), len(q))
        assert row.D == pytest.approx(F.drift(p, q, basis=basis, value_range=rng), rel=1e-9)
        # the refit per decile is a different statistic: its own basis and ranges
        assert loc.D == pytest.approx(F.drift(p, q), rel=1e-9)
        assert loc.D != pytest.approx(row.D, rel=1e-3)
        # the shuffled baseline: same basis and range, group sizes kept, seeded
        pooled = torch.cat([p, q])
        gen = torch.Generator().manual_seed(3)
        null = []
        for _ in range(20):
            perm = torch.randperm(len(pooled), generator=gen)
            null.append(
                F.drift(
                    pooled[perm[: len(p)]], pooled[perm[len(p) :]], basis=basis, value_range=rng
                )
            )
        assert table.attrs["shuffled_D"][row.decile] == pytest.approx(null, rel=1e-9)
        assert row.D_shuffled == pytest.approx(np.mean(null), rel=1e-9)
        assert row.D_shuffled_q95 == pytest.approx(np.quantile(null, 0.95), rel=1e-9)
        assert row.p_value == pytest.approx((1 + sum(v >= row.D for v in null)) / 21)
        assert row.excess == pytest.approx(row.D - row.D_shuffled)


def test_identical_deciles_get_identical_values_in_the_global_variant():
    P, Q = _groups()
    first = _in_decile(P, "0"), _in_decile(Q, "0")
    # the same filters once more, in decile (0.9, 1.0]
    P2 = P + [_record(r.name + "'", r.weight, 9, 1.0) for r in first[0]]
    Q2 = Q + [_record(r.name + "'", r.weight, 9, 1.0) for r in first[1]]
    P2 = [r for r in P2 if r.decile != "(0.9, 1.0]" or r.name.endswith("'")]
    Q2 = [r for r in Q2 if r.decile != "(0.9, 1.0]" or r.name.endswith("'")]
    table = F.drift_by_decile(P2, Q2, shuffles=5).set_index("decile")
    assert table.loc["0", "D"] == table.loc["(0.9, 1.0]", "D"]
    assert table.attrs["shuffled_D"]["0"] == table.attrs["shuffled_D"]["(0.9, 1.0]"]
    assert table.loc["0", "D"] != table.loc["(0.4, 0.5]", "D"]


def test_p_value_small_for_different_sets_and_large_for_draws_of_one_distribution():
    P, Q = _groups()
    different = F.drift_by_decile(P, Q, shuffles=20)
    assert ((different.p_value > 0) & (different.p_value <= 1)).all()
    assert np.allclose(different.p_value, 1 / 21)  # the smallest p-value 20 shuffles allow
    assert (different.D > different.D_shuffled_q95).all()
    same_P = _records(
        {d: [_weight(16, 8, 500 + 10 * k + i) for i in range(2)] for k, d in enumerate(DEPTHS)}, "a"
    )
    same_Q = _records(
        {d: [_weight(16, 8, 900 + 10 * k + i) for i in range(2)] for k, d in enumerate(DEPTHS)}, "b"
    )
    for basis in F.DRIFT_BASES:
        same = F.drift_by_decile(same_P, same_Q, shuffles=20, basis=basis)
        assert ((same.p_value > 0) & (same.p_value <= 1)).all()
        assert (same.p_value > 0.1).all(), same.p_value.tolist()
        assert same.excess.abs().max() < 0.2 * same.D_shuffled.min()
    res = F.drift_with_baseline(F.prepare_filters(P), F.prepare_filters(Q), shuffles=20)
    assert (
        res["p_value"] == pytest.approx(1 / 21)
        and res["D"] > res["D_shuffled_q95"] > res["D_shuffled"]
    )
    assert len(res["D_shuffled_values"]) == 20


# --------------------------------------------------------------------------- ranges and coordinates


def test_coefficient_range_shared_and_per_coefficient():
    c = torch.arange(18, dtype=torch.float64).reshape(2, 9)
    lo, hi = F.coefficient_range(c)
    assert torch.equal(lo, torch.zeros(9, dtype=torch.float64)) and torch.equal(
        hi, torch.full((9,), 17.0, dtype=torch.float64)
    )
    lo, hi = F.coefficient_range(c, shared=False)
    assert torch.equal(lo, c[0]) and torch.equal(hi, c[1])
    with pytest.raises(ValueError):
        F.coefficient_range(torch.empty(0, 9))


def test_coefficient_densities_with_an_explicit_range():
    eps = float(np.finfo(np.float32).eps)
    p, q = torch.zeros(10, 9), torch.ones(5, 9)
    # range [-1, 1] in 4 bins of width 0.5: 0 falls in bin 2, 1 (the closed right edge) in bin 3
    dp, dq = F.coefficient_densities(p, q, bins=4, value_range=(-1.0, 1.0))
    full = 2.0 / (2.0 + 3 * eps)  # density 1 / 0.5 in the full bin, eps in the three others
    assert dp[:, 2].tolist() == pytest.approx([full] * 9, rel=1e-12)
    assert dq[:, 3].tolist() == pytest.approx([full] * 9, rel=1e-12)
    # values outside the range are left out, as np.histogram does
    dq_out = F.coefficient_densities(
        p, torch.cat([q, torch.full((3, 9), 5.0)]), bins=4, value_range=(-1.0, 1.0)
    )[1]
    assert torch.equal(dq_out, dq)
    # scalars and per-coefficient (9,) bounds are the same range
    same = F.coefficient_densities(
        p, q, bins=4, value_range=(torch.full((9,), -1.0), torch.ones(9))
    )
    assert torch.equal(same[0], dp) and torch.equal(same[1], dq)
    # matches numpy's histogram with density=True, eps floor, renormalised ([GK]'s code)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 9, generator=g, dtype=torch.float64)
    d = F.coefficient_densities(x, x, bins=70, value_range=(-4.0, 4.0))[0]
    for i in range(9):
        v, _ = np.histogram(x[:, i].numpy(), range=(-4.0, 4.0), bins=70, density=True)
        v[v == 0] = eps
        assert d[i].numpy() == pytest.approx(v / v.sum(), rel=1e-12)
    with pytest.raises(ValueError):
        F.coefficient_densities(p, q, bins=4, value_range=(2.0, 3.0))  # nothing inside
    with pytest.raises(ValueError):
        F.coefficient_densities(p, q, value_range=(1.0, -1.0))


def test_default_drift_is_fitted_on_the_pooled_sets():
    g = torch.Generator().manual_seed(6)
    p = torch.randn(3000, 9, generator=g)
    q = torch.randn(3000, 9, generator=g) * torch.linspace(0.2, 2.0, 9)
    basis = F.pca_basis(torch.cat([p, q]))
    joint = F.coefficient_range(torch.cat([basis.transform(p), basis.transform(q)]), shared=False)
    assert F.drift(p, q) == F.drift(p, q, basis=basis, value_range=joint)
    res = F.drift_with_baseline(p, q, shuffles=2)
    assert res["D"] == F.drift(p, q)
    shared = F.coefficient_range(torch.cat([basis.transform(p), basis.transform(q)]))
    assert F.drift_with_baseline(p, q, shuffles=0, basis=basis, value_range=shared)["D"] == F.drift(
        p, q, basis=basis, value_range=shared
    )
    d, table = F.drift(p, q, details=True, basis=basis, value_range=shared)
    assert d == pytest.approx((table.evr * (table.kl_pq + table.kl_qp)).sum())


def test_per_decile_variant_is_the_refit_statistic():
    """``basis="per_decile"`` is the earlier statistic: drift and shuffles refitted per decile."""
    P, Q = _groups(1)
    table = F.drift_by_decile(P, Q, shuffles=4, seed=2, basis="per_decile")
    for row in table.itertuples():
        p, q = (
            F.prepare_filters(_in_decile(P, row.decile)),
            F.prepare_filters(_in_decile(Q, row.decile)),
        )
        assert row.D == pytest.approx(F.drift(p, q), rel=1e-9)
        pooled = torch.cat([p, q])
        gen = torch.Generator().manual_seed(2)
        null = []
        for _ in range(4):
            perm = torch.randperm(len(pooled), generator=gen)
            null.append(F.drift(pooled[perm[: len(p)]], pooled[perm[len(p) :]]))
        assert row.D_shuffled == pytest.approx(np.mean(null), rel=1e-9)
        assert table.attrs["evr_by_decile"][row.decile] == pytest.approx(
            F.pca_basis(pooled).explained_variance_ratio.tolist(), rel=1e-9
        )


# --------------------------------------------------------------------------- layout and edge cases


def test_table_layout_and_edge_cases():
    P, Q = _groups()
    table = F.drift_by_decile(P, Q, shuffles=0)
    assert tuple(table.columns) == F.DRIFT_COLUMNS
    assert (
        table.D_shuffled.isna().all()
        and table.p_value.isna().all()
        and table.D_shuffled_q95.isna().all()
    )
    assert table.attrs["variant"] == "global" and table.attrs["shuffles"] == 0
    # a decile where one group has no 3x3 filter is left out; non-3x3 layers are skipped
    extra = [
        _record("pw", torch.randn(8, 8, 1, 1), 5, 0.55),
        _record("solo", _weight(4, 4, 3), 5, 0.55),
    ]
    t2 = F.drift_by_decile(P + extra, Q, shuffles=0)
    assert list(t2.decile) == list(table.decile)
    empty = F.drift_by_decile([], [], shuffles=2)
    assert empty.empty and tuple(empty.columns) == F.DRIFT_COLUMNS
    with pytest.raises(ValueError):
        F.drift_by_decile(P, Q, basis="per-layer")
    with pytest.raises(ValueError):
        F.drift_by_decile(P, Q, shuffles=-1)
    nan = F.drift_with_baseline([], Q, shuffles=2)
    assert math.isnan(nan["D"]) and math.isnan(nan["p_value"]) and nan["n_P"] == 0
    # attrs hold plain values, so tables of several groups still concatenate
    both = pd.concat([table, F.drift_by_decile(Q, P, shuffles=0)])
    assert len(both) == 2 * len(table)


def test_drift_bars_draw_the_spread():
    import matplotlib.pyplot as plt

    from robustlens.book import basis_figures

    P, Q = _groups()
    fig = basis_figures.drift_decile_bars({"toy": F.drift_by_decile(P, Q, shuffles=5)})
    plt.close(fig)
    basis, rng = _global_coordinates(P, Q)
    coeffs = {
        "robust": basis.transform(F.prepare_filters(P)),
        "standard": basis.transform(F.prepare_filters(Q)),
    }
    fig = basis_figures.coefficient_density_grid(
        coeffs, basis.explained_variance_ratio, value_range=rng
    )
    plt.close(fig)
