"""The drift test with the model as its unit (robustlens.science.drift_test)."""

import math

import numpy as np
import pytest
import torch

from robustlens.book import claims
from robustlens.science import drift_test
from robustlens.science import filters as F


def _model(gen: torch.Generator, shift: float, depth_norms=(0.0, 0.5, 1.0), n=24) -> list:
    """One model's 3x3 layers: random filters plus ``shift`` times one fixed pattern, the model's
    own draw of that pattern's weight (a seed's own variation)."""
    pattern = torch.tensor([[0.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    out = []
    for depth, norm in enumerate(depth_norms):
        w = torch.randn(n, 4, 3, 3, generator=gen) + shift * pattern
        out.append(F.ConvRecord(f"conv{depth}", w, (3, 3), depth, norm, F.decile_label(norm)))
    return out


def _zoo(seed: int, n_seeds: int, shift: float, archs=("a", "b"), seed_sd: float = 0.0):
    gen = torch.Generator().manual_seed(seed)
    P, Q, block = {}, {}, {}
    for arch in archs:
        for s in range(n_seeds):
            own = float(torch.randn(1, generator=gen)) * seed_sd  # a seed's own drift
            P[f"{arch}/robust/{s}"] = _model(gen, shift + own)
            Q[f"{arch}/standard/{s}"] = _model(gen, float(torch.randn(1, generator=gen)) * seed_sd)
            block[f"{arch}/robust/{s}"] = block[f"{arch}/standard/{s}"] = arch
    return P, Q, block


def _coordinates(P, Q):
    every = [r for recs in (*P.values(), *Q.values()) for r in recs]
    basis = F.pca_basis(every)
    return basis, F.coefficient_range(basis.transform(F.prepare_filters(every)))


def test_observed_d_is_filters_drift_of_the_pooled_groups():
    P, Q, block = _zoo(0, 2, 0.5)
    basis, rng = _coordinates(P, Q)
    res = drift_test.model_drift_test(P, Q, basis, rng, bins=20, block_of=block)
    pooled_p = [r for recs in P.values() for r in recs]
    pooled_q = [r for recs in Q.values() for r in recs]
    assert res["D"] == pytest.approx(F.drift(pooled_p, pooled_q, 20, basis=basis, value_range=rng))
    assert res["n_P_models"] == res["n_Q_models"] == 4
    assert res["excess"] == pytest.approx(res["D"] - res["D_shuffled"])


def test_two_seeds_per_architecture_cannot_reach_five_percent():
    # 6 x 6 relabellings and every D has its mirror: the smallest p is 2/36, above 0.05.
    P, Q, block = _zoo(1, 2, 3.0)
    basis, rng = _coordinates(P, Q)
    res = drift_test.model_drift_test(P, Q, basis, rng, bins=20, block_of=block)
    assert res["n_relabellings"] == 36
    assert res["smallest_p"] == pytest.approx(2 / 36)
    assert res["p_value"] == pytest.approx(2 / 36)  # a large real shift: the extreme split


def test_a_real_shift_is_found_with_four_seeds():
    P, Q, block = _zoo(2, 4, 1.0)
    basis, rng = _coordinates(P, Q)
    res = drift_test.model_drift_test(P, Q, basis, rng, bins=20, block_of=block)
    assert res["n_relabellings"] == 70 * 70
    assert res["p_value"] <= 0.05 and res["excess"] > 0


def test_seed_variation_alone_is_not_a_drift():
    # Null tables: seeds that each drift on their own, no robust-vs-standard difference. The
    # rule chapter 03 draws (claims.drift_verdict, models relabelled) says "above" at most at its
    # stated rate; a filter shuffle (filters as replicates) calls most of them a drift.
    rejections_models, rejections_filters = 0, 0
    draws = 200
    for seed in range(draws):
        P, Q, block = _zoo(100 + seed, 4, 0.0, seed_sd=1.0)
        basis, rng = _coordinates(P, Q)
        res = drift_test.model_drift_test(P, Q, basis, rng, bins=20, block_of=block)
        verdict = claims.drift_verdict(res["p_value"], res["smallest_p"])
        rejections_models += verdict == claims.DRIFT_ABOVE
        if seed < 20:  # the filter shuffle is slow; 20 tables show it
            pooled_p = [r for recs in P.values() for r in recs]
            pooled_q = [r for recs in Q.values() for r in recs]
            shuffled = F.drift_with_baseline(
                pooled_p, pooled_q, 20, 19, basis=basis, value_range=rng
            )
            rejections_filters += shuffled["p_value"] <= 0.05
    assert rejections_filters >= 10  # pseudo-replication: far above 5 % of 20
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / draws)  # the stated rate, 3 standard errors
    assert rejections_models / draws <= bound


def test_the_drift_verdict_needs_a_split_that_can_reach_alpha():
    assert claims.drift_verdict(0.01, 0.0004) == claims.DRIFT_ABOVE
    assert claims.drift_verdict(0.2, 0.0004) == claims.DRIFT_NOT_ABOVE
    assert claims.drift_verdict(2 / 36, 2 / 36) == claims.TOO_FEW_MODELS


def test_relabellings_stay_within_an_architecture():
    P, Q, block = _zoo(3, 2, 0.0)
    is_p = np.array([lab in P for lab in [*P, *Q]])
    blocks = np.array([block[lab] for lab in [*P, *Q]])
    lab = drift_test._relabellings(is_p, blocks, 0)
    assert (lab[0] == is_p).all()
    for b in ("a", "b"):
        assert (lab[:, blocks == b].sum(axis=1) == 2).all()
    assert len({tuple(r) for r in lab}) == len(lab)


def test_by_decile_has_one_row_per_decile_with_filters():
    P, Q, block = _zoo(4, 2, 0.5)
    table = drift_test.model_drift_by_decile(P, Q, bins=20, block_of=block)
    assert list(table.columns) == list(drift_test.COLUMNS)
    assert table.decile.tolist() == ["0", "(0.4, 0.5]", "(0.9, 1.0]"]
    assert table.smallest_p.tolist() == pytest.approx([2 / 36] * 3)


def test_a_model_in_both_groups_or_without_architecture_is_refused():
    P, Q, block = _zoo(5, 2, 0.0)
    basis, rng = _coordinates(P, Q)
    with pytest.raises(ValueError, match="in both groups"):
        drift_test.model_drift_test(P, {**Q, next(iter(P)): P[next(iter(P))]}, basis, rng)
    with pytest.raises(ValueError, match="block_of has no architecture"):
        drift_test.model_drift_test(P, Q, basis, rng, block_of={})


def test_too_few_filters_give_no_d():
    P, Q, _ = _zoo(6, 1, 0.0)
    basis, rng = _coordinates(P, Q)
    empty = {k: [] for k in P}
    res = drift_test.model_drift_test(empty, Q, basis, rng)
    assert math.isnan(res["D"]) and res["n_P"] == 0
