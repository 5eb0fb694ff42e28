"""Tests of robustlens.science.filters: hand-computed metric values, extraction order, BN folding,
drift, and a cross-check against the reference package torchconvquality.

torchconvquality (0.3.0) and robustlens agree on these definitions, checked below:
* sparsity: tcq calls a filter sparse iff every |w| < 0.01 * max|W_layer|, robustlens iff
  max|w| <= max|W_layer| / 100; the two only differ for a filter whose maximum equals the
  threshold exactly, which the random layers here never produce;
* orthogonality: identical (rows L2-normalised, zero rows left zero, sparse filters kept);
* variance entropy: tcq's ``variance_entropy`` (raw filters, sparse kept) is our
  ``"cnn-filter-db"`` variant and its ``variance_entropy_clean`` (raw, sparse dropped) our
  ``"raw"`` variant.  [GK]'s ``"gk"`` variant scales each filter by its L-infinity norm first,
  which tcq never does, so it is tested on hand-computed cases only.  For fewer than two
  filters or zero spread tcq returns 0 (or NaN from 0*log 0) where robustlens returns NaN; not
  compared.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from torch import nn

from robustlens.science import filters as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # tcq imports the deprecated distutils
    import torchconvquality as tcq

LOG10_9 = math.log10(9)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random numbers, whatever ran before it."""
    torch.manual_seed(0)


def _layer(out=32, cin=16, n_sparse=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, cin, 3, 3, generator=g)
    flat = w.view(-1, 9)
    flat[:n_sparse] *= 1e-3  # far below max/100
    return w


# --------------------------------------------------------------------------- sparsity


def test_sparsity_counts_hand_made_sparse_filters():
    w = torch.ones(4, 5, 3, 3)
    w[0, 0, 1, 1] = 50.0  # layer max 50, threshold 0.5
    flat = w.view(-1, 9)
    flat[1:7] *= 0.4  # six filters with max 0.4 <= 0.5
    flat[7] = -0.5  # exactly at the threshold: sparse (inclusive)
    flat[8] = 0.0  # all-zero filter: sparse
    flat[9, 3] = 0.51  # above threshold: not sparse, although its other entries are 1
    assert F.sparsity(w) == pytest.approx(8 / 20)
    mask = F.sparse_mask(w)
    assert mask[1:9].all() and not mask[0] and not mask[9:].any()


def test_all_zero_layer_is_fully_sparse():
    assert F.sparsity(torch.zeros(3, 2, 3, 3)) == 1.0


# --------------------------------------------------------------------------- orthogonality


def test_orthogonality_identical_filters_is_zero():
    w = torch.randn(1, 4, 3, 3).repeat(6, 1, 1, 1) * torch.tensor([1, 2, 3, 4, 5, 6.0]).view(
        -1, 1, 1, 1
    )
    assert F.orthogonality(w) == pytest.approx(0.0, abs=1e-6)


def test_orthogonality_orthonormal_rows_is_one():
    q, _ = torch.linalg.qr(torch.randn(18, 18, dtype=torch.float64))
    w = (q[:8] * 3.0).float().reshape(8, 2, 3, 3)  # row scale must not matter
    assert F.orthogonality(w) == pytest.approx(1.0, abs=1e-6)


def test_orthogonality_zero_row_and_single_channel():
    w = torch.zeros(2, 1, 3, 3)
    w[0, 0, 0, 0] = 1.0  # rows e1 and 0: |G - I| sums to 1 over n(n-1) = 2
    assert F.orthogonality(w) == pytest.approx(0.5)
    assert math.isnan(F.orthogonality(torch.randn(1, 4, 3, 3)))


# --------------------------------------------------------------------------- variance entropy


def test_entropy_of_one_direction_is_zero():
    d = torch.randn(9)
    w = (torch.rand(64, 1) + 0.5) * torch.sign(torch.randn(64, 1)) * d
    w = w.reshape(16, 4, 3, 3)
    for variant in F.VARIANTS:
        assert F.variance_entropy(w, variant) == pytest.approx(0.0, abs=1e-4)


def test_entropy_of_isotropic_filters_is_near_log10_9():
    w = torch.randn(128, 160, 3, 3, generator=torch.Generator().manual_seed(1))
    for variant in ("cnn-filter-db", "raw"):
        assert F.variance_entropy(w, variant) == pytest.approx(LOG10_9, abs=2e-3)
    # L-infinity scaling keeps the law symmetric across the nine axes, so still near the maximum
    assert F.variance_entropy(w, "gk") == pytest.approx(LOG10_9, abs=2e-3)


def test_entropy_two_axes_hand_computed():
    # filters +-a e1 and +-b e2: centred already, variances 2a^2/3 and 2b^2/3
    a, b = 1.0, 2.0
    f = torch.zeros(4, 9)
    f[0, 0], f[1, 0], f[2, 1], f[3, 1] = a, -a, b, -b
    w = f.reshape(2, 2, 3, 3)
    p = np.array([a * a, b * b]) / (a * a + b * b)
    assert F.variance_entropy(w, "raw") == pytest.approx(-(p * np.log10(p)).sum(), abs=1e-6)
    # gk scales every filter to max|w| = 1, so both axes weigh the same
    assert F.variance_entropy(w, "gk") == pytest.approx(math.log10(2), abs=1e-6)


def test_gk_entropy_ignores_filter_scale_and_sparse_filters():
    w = _layer(24, 12, seed=2)
    # stretch the filters with a large first tap: that skews the raw spectrum towards one axis
    scales = torch.where(w.view(-1, 9)[:, :1].abs() > 1, 4.0, 1.0).view(24, 12, 1, 1)
    assert F.sparsity(w * scales) == F.sparsity(w) == 0
    assert F.variance_entropy(w * scales, "gk") == pytest.approx(
        F.variance_entropy(w, "gk"), abs=1e-6
    )
    assert F.variance_entropy(w * scales, "raw") < F.variance_entropy(w, "raw") - 0.02
    # sparse filters are dropped by gk and raw, kept by cnn-filter-db
    sparse = w.clone()
    sparse.view(-1, 9)[:100] = 1e-5 * torch.randn(100, 9).sign()
    dense_only = sparse.view(-1, 9)[100:].reshape(-1, 1, 3, 3)
    for variant in ("gk", "raw"):
        assert F.variance_entropy(sparse, variant) == pytest.approx(
            F.variance_entropy(dense_only, variant), abs=1e-5
        )


def test_entropy_degenerate_cases_are_nan():
    assert math.isnan(F.variance_entropy(torch.randn(1, 1, 3, 3)))
    same = torch.randn(1, 1, 3, 3).repeat(5, 3, 1, 1)
    for variant in F.VARIANTS:
        assert math.isnan(F.variance_entropy(same, variant))
    one_dense = torch.full((4, 1, 3, 3), 1e-6)
    one_dense[0] = 1.0
    assert math.isnan(F.variance_entropy(one_dense, "gk"))  # a single non-sparse filter


def test_bad_input_raises():
    with pytest.raises(ValueError, match="variant"):
        F.variance_entropy(torch.randn(2, 2, 3, 3), "nope")
    with pytest.raises(ValueError, match="variant"):
        F.filter_table(nn.Conv2d(3, 4, 3), "m", variant="GK")
    with pytest.raises(ValueError, match="3, 3"):
        F.sparsity(torch.randn(2, 2, 5, 5))
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        F.extract_convs(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2)))
    with pytest.raises(ValueError, match="tau"):
        F.layer_metrics([torch.randn(2, 2, 3, 3)], tau=2.0)


# --------------------------------------------------------------------------- torchconvquality


@pytest.mark.parametrize("shape,n_sparse", [((64, 32), 10), ((16, 3), 0), ((40, 40), 400)])
def test_matches_torchconvquality(shape, n_sparse):
    w = _layer(*shape, n_sparse=n_sparse, seed=shape[0])
    ref = tcq.measure_conv_weight_quality(w)
    assert F.sparsity(w) == pytest.approx(ref["sparsity"], abs=1e-5)
    assert F.orthogonality(w) == pytest.approx(ref["orthogonality"], abs=1e-5)
    assert F.variance_entropy(w, "cnn-filter-db") == pytest.approx(
        ref["variance_entropy"], abs=1e-5
    )
    assert F.variance_entropy(w, "raw") == pytest.approx(ref["variance_entropy_clean"], abs=1e-5)


def test_filter_table_matches_torchconvquality_on_a_model():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.Conv2d(32, 8, 1),
        nn.Conv2d(8, 24, 3, groups=2),
    )
    with torch.no_grad():
        model[2].weight.view(-1, 9)[:50] *= 1e-4
    ref = tcq.measure_quality(model)
    pairs = {
        ("sparsity", "raw"): "sparsity",
        ("orthogonality", "raw"): "orthogonality",
        ("variance_entropy", "raw"): "variance_entropy_clean",
        ("variance_entropy", "cnn-filter-db"): "variance_entropy",
    }
    assert F.filter_table(model, "m").equals(F.metrics_table(F.extract_convs(model), "m"))
    records = F.extract_convs(model)
    for (metric, variant), key in pairs.items():
        t = F.metrics_table(records, "m", variant=variant)
        ours = t[t.metric == metric].set_index("layer")["value"]
        assert set(ours.index) == set(ref)  # the 1x1 layer has no 3x3 metrics
        for name in ref:
            assert ours[name] == pytest.approx(ref[name][key], abs=1e-5), (metric, variant, name)


# --------------------------------------------------------------------------- extraction


class Shuffled(nn.Module):
    """Modules defined in one order, used in another; one conv used twice, one never."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(8, 4, 1)
        self.unused = nn.Conv2d(3, 3, 3)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        x = self.mid(torch.relu(x))
        x = self.mid(x)  # second use: counted once
        return self.head(x)


def test_extraction_follows_forward_order():
    recs = F.extract_convs(Shuffled())
    assert [r.name for r in recs] == ["stem", "mid", "head"]
    assert [r.conv_depth for r in recs] == [0, 1, 2]
    assert [r.conv_depth_norm for r in recs] == [0.0, 0.5, 1.0]
    assert [r.decile for r in recs] == ["0", "(0.4, 0.5]", "(0.9, 1.0]"]
    assert recs[2].kernel_size == (1, 1) and not recs[2].is_3x3 and recs[1].n_filters == 64
    model = Shuffled()
    first = F.extract_convs(model)[0].weight
    assert not first.requires_grad and torch.equal(first, model.stem.weight)


def test_single_conv_depth_is_zero():
    recs = F.extract_convs(nn.Conv2d(3, 4, 3))
    assert (
        len(recs) == 1
        and recs[0].name == ""
        and recs[0].conv_depth_norm == 0
        and recs[0].decile == "0"
    )


def test_decile_labels_match_pd_cut():
    norms = [i / 10 for i in range(11)] + [1 / 3, 0.05, 0.999]
    labels = F.decile_labels(norms)
    assert labels[:11] == list(F.DECILE_LABELS)
    assert labels[11:] == ["(0.3, 0.4]", "(0.0, 0.1]", "(0.9, 1.0]"]
    cut = pd.cut(np.array(norms), np.linspace(0, 1, 11))
    for lab, iv in zip(labels, cut):
        if pd.isna(iv):
            assert lab == "0"
        else:
            assert lab == f"({iv.left:.1f}, {iv.right:.1f}]"
    assert F.decile_label(0.3) == "(0.2, 0.3]"  # 3/10 sits on the right-closed edge
    with pytest.raises(ValueError):
        F.decile_label(1.5)


def _conv_bn():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, bias=True),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(5),
    )
    for bn in (model[1], model[5]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3)
        bn.weight.data.uniform_(-2, 2)
        bn.bias.data.uniform_(-1, 1)
    return model.eval()


def test_fold_bn_equals_conv_bn_composition():
    model = _conv_bn()
    recs = F.extract_convs(model, fold_bn=True)
    assert recs[0].folded_bn == "1"
    assert recs[1].folded_bn is None  # ReLU(inplace) sits between conv and BN
    conv, bn = model[0], model[1]
    x = torch.randn(2, 3, 9, 9)
    shift = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        folded = nn.functional.conv2d(x, recs[0].weight) + shift.view(1, -1, 1, 1)
        assert torch.allclose(folded, bn(conv(x)), atol=1e-5)
    assert torch.equal(recs[1].weight, model[3].weight)
    assert torch.equal(F.extract_convs(model)[0].weight, conv.weight)  # default: no folding


def test_fold_bn_skips_training_mode_and_keeps_state():
    model = _conv_bn().train()
    stats = model[1].running_mean.clone()
    with pytest.warns(UserWarning, match="not folded"):
        recs = F.extract_convs(model, fold_bn=True)
    assert recs[0].folded_bn is None
    assert model.training and model[1].training  # flags restored
    assert torch.equal(model[1].running_mean, stats)  # no statistics update


# --------------------------------------------------------------------------- weight statistics


def test_weight_stats_against_numpy_and_scipy():
    w = torch.randn(20, 7, 3, 3) ** 3  # heavy tails
    s = F.weight_stats(w, tau=0.05)
    x = w.double().numpy().ravel()
    assert s["weight_std"] == pytest.approx(np.std(x), rel=1e-6)
    assert s["weight_kurtosis"] == pytest.approx(scipy.stats.kurtosis(x), rel=1e-5)
    assert s["weight_mean_abs"] == pytest.approx(np.abs(x).mean(), rel=1e-6)
    assert s["weight_small_frac"] == pytest.approx((np.abs(x) < 0.05 * np.abs(x).max()).mean())
    norms = np.linalg.norm(w.double().numpy().reshape(20, -1), axis=1)
    assert s["filter_norm_mean"] == pytest.approx(norms.mean(), rel=1e-6)
    assert s["filter_norm_std"] == pytest.approx(norms.std(), rel=1e-5)


def test_fisher_kurtosis_of_gaussian_is_zero():
    w = torch.randn(256, 256, 3, 3, generator=torch.Generator().manual_seed(5))
    assert F.weight_stats(w)["weight_kurtosis"] == pytest.approx(0.0, abs=0.02)


def test_weight_stats_hand_computed():
    w = torch.tensor([3.0, -1.0, 0.02, 0.0]).view(2, 2, 1, 1)  # filters (3, -1) and (0.02, 0)
    s = F.weight_stats(w, tau=0.01)
    assert s["weight_small_frac"] == 0.5  # 0.02 and 0 lie below 0.01 * 3
    assert s["weight_mean_abs"] == pytest.approx(4.02 / 4)
    assert s["filter_norm_mean"] == pytest.approx((math.sqrt(10) + 0.02) / 2)
    assert s["filter_norm_std"] == pytest.approx((math.sqrt(10) - 0.02) / 2)
    assert s["weight_std"] == pytest.approx(np.std([3.0, -1.0, 0.02, 0.0]))


def test_batched_layers_equal_single_layers():
    ws = [_layer(16, 8, n_sparse=5, seed=s) for s in range(4)] + [
        torch.randn(16, 8, 1, 1),
        _layer(8, 4),
    ]
    batched = F.layer_metrics(ws, variant="gk", tau=0.02)
    for w, got in zip(ws, batched):
        single = F.layer_metrics([w], variant="gk", tau=0.02)[0]
        assert got.keys() == single.keys()
        for k in got:
            assert got[k] == pytest.approx(
                single[k], abs=1e-6, nan_ok=True
            )  # float32 kernels may block differently
        if w.shape[-1] == 3:
            assert got["sparsity"] == F.sparsity(w)
            assert got["variance_entropy"] == pytest.approx(F.variance_entropy(w, "gk"), abs=1e-6)
        else:
            assert "sparsity" not in got


# --------------------------------------------------------------------------- tables


def test_filter_table_layout():
    t = F.filter_table(Shuffled(), "toy", variant="raw")
    assert list(t.columns) == list(F.TABLE_COLUMNS)
    assert set(t.variant) == {"raw"} and set(t.model) == {"toy"}
    by_layer = t.groupby("layer")["metric"].apply(set)
    assert by_layer["head"] == set(F.WEIGHT_STATS)
    assert by_layer["stem"] == set(F.WEIGHT_STATS) | set(F.METRICS_3X3)
    assert t.set_index(["layer", "metric"]).loc[("mid", "sparsity"), "n_filters"] == 64
    assert sorted(t.depth.unique()) == [0.0, 0.5, 1.0]


def test_aggregate_by_decile_weights_by_filter_count():
    t = pd.DataFrame(
        {
            "model": "m",
            "layer": ["a", "b", "c", "d"],
            "depth": [0.05, 0.1, 0.55, 0.6],
            "decile": ["(0.0, 0.1]", "(0.0, 0.1]", "(0.5, 0.6]", "(0.5, 0.6]"],
            "metric": "sparsity",
            "variant": "gk",
            "value": [1.0, 0.0, 0.5, np.nan],
            "n_filters": [1, 3, 10, 90],
        }
    )
    agg = F.aggregate_by_decile(t)
    assert list(agg.decile) == ["(0.0, 0.1]", "(0.5, 0.6]"]
    assert agg.value.tolist() == pytest.approx([0.25, 0.5])  # NaN layer left out with its weight
    assert agg.n_layers.tolist() == [2, 1]
    assert F.aggregate_by_decile(t, weighted=False).value.tolist() == pytest.approx([0.5, 0.5])


# --------------------------------------------------------------------------- PCA and drift


def test_pca_basis_matches_sklearn():
    from sklearn.decomposition import PCA

    x = torch.randn(500, 9, dtype=torch.float64) @ torch.randn(9, 9, dtype=torch.float64)
    basis = F.pca_basis(x)
    ref = PCA(n_components=9).fit(x.numpy())
    assert np.allclose(
        basis.explained_variance_ratio.numpy(), ref.explained_variance_ratio_, atol=1e-10
    )
    dots = (basis.components.numpy() * ref.components_).sum(axis=1)
    assert np.allclose(np.abs(dots), 1, atol=1e-8)
    assert np.allclose(
        np.abs(basis.transform(x).numpy()), np.abs(ref.transform(x.numpy())), atol=1e-6
    )


def test_prepare_filters_scales_and_drops_sparse():
    w = _layer(8, 4, n_sparse=6)
    f = F.prepare_filters([w, torch.randn(3, 3, 1, 1)])  # the 1x1 layer is skipped
    assert f.shape == (32 - 6, 9)
    assert torch.allclose(f.abs().amax(dim=1), torch.ones(26))


def test_coefficient_densities_hand_made():
    p = torch.zeros(10, 9)
    q = torch.ones(5, 9)
    dp, dq = F.coefficient_densities(p, q, bins=70)
    eps = float(np.finfo(np.float32).eps)
    assert dp.shape == (9, 70) and torch.allclose(dp.sum(1), torch.ones(9, dtype=torch.float64))
    # range [0, 1], bin width 1/70: the full bin has density 70, empty ones eps, then renormalised
    assert dp[0, 0] == pytest.approx(70 / (70 + 69 * eps), rel=1e-12)
    assert dp[0, 1] == pytest.approx(eps / (70 + 69 * eps), rel=1e-12)
    assert dq[0, -1] == pytest.approx(70 / (70 + 69 * eps), rel=1e-12)
    # a zero-width range (all values equal) puts everything in the first bin of width 1/70
    dp, dq = F.coefficient_densities(torch.ones(3, 9), torch.ones(4, 9))
    assert torch.equal(dp, dq) and dp[0, 0] == pytest.approx(70 / (70 + 69 * eps), rel=1e-12)
    with pytest.raises(ValueError):
        F.coefficient_densities(torch.empty(0, 9), q)


def test_drift_zero_for_identical_and_positive_for_different():
    g = torch.Generator().manual_seed(6)
    p = torch.randn(3000, 9, generator=g)
    q = torch.randn(3000, 9, generator=g) * torch.linspace(0.2, 2.0, 9)
    assert F.drift(p, p.clone()) == pytest.approx(0.0, abs=1e-12)
    d, table = F.drift(p, q, details=True)
    assert d > 0.1 and d == pytest.approx(F.drift(q, p), rel=1e-9)
    assert d == pytest.approx((table.evr * (table.kl_pq + table.kl_qp)).sum())
    assert table.evr.sum() == pytest.approx(1.0)


def test_drift_accepts_models():
    torch.manual_seed(7)
    a, b = Shuffled(), Shuffled()
    assert F.drift(a, a) == pytest.approx(0.0, abs=1e-12)
    assert F.drift(a, b) > 0


# --------------------------------------------------------------------------- GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    ws = [_layer(64, 32, n_sparse=20, seed=s) for s in range(3)] + [torch.randn(32, 16, 1, 1)]
    for variant in F.VARIANTS:
        cpu = F.layer_metrics(ws, variant)
        gpu = F.layer_metrics([w.cuda() for w in ws], variant)
        for a, b in zip(cpu, gpu):
            for k in a:
                assert b[k] == pytest.approx(a[k], abs=1e-5, nan_ok=True), (variant, k)
    p, q = torch.randn(3000, 9), torch.randn(3000, 9) * 1.5
    assert F.drift(p.cuda(), q.cuda()) == pytest.approx(F.drift(p, q), abs=1e-6)


def test_pca_basis_of_one_channel_models_and_eigh_matches_svd():
    """Fashion-MNIST nets take 1 channel: models must be traceable without an input shape."""
    from robustlens.science import models

    torch.manual_seed(3)
    net = models.build_model("cnn", 1, 10)
    basis = F.pca_basis(net)
    x = F.prepare_filters(net).double()
    s = torch.linalg.svdvals(x - x.mean(0))
    assert torch.allclose(basis.explained_variance_ratio, s.square() / s.square().sum(), atol=1e-10)
    assert F.drift(net, net) == pytest.approx(0.0, abs=1e-12)


def test_default_init_std_matches_a_fresh_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 128, 3)
    w = conv.weight.detach()
    assert w.std().item() == pytest.approx(F.default_init_std(w), rel=0.02)
    from scipy.stats import kurtosis

    assert kurtosis(w.flatten().numpy()) == pytest.approx(F.UNIFORM_EXCESS_KURTOSIS, abs=0.05)


def test_the_deep_cnn_puts_a_3x3_conv_in_every_depth_decile():
    from robustlens.science import models

    for arch, expect_all in (("deepcnn", True), ("cnn", False)):
        records = F.extract_convs(models.build_model(arch, 1, 10, seed=0), (1, 1, 28, 28))
        deciles = {F.decile_label(r.conv_depth_norm) for r in records if r.is_3x3}
        assert (deciles == set(F.DECILE_LABELS)) == expect_all, (arch, sorted(deciles))
