"""The robust-accuracy suite: statistics, determinism, worst case, AutoAttack, sanity checks, bad input.

Everything runs on CPU with a linear classifier on synthetic 8x8 images (trained in a second), so
the whole file stays well under a minute on 2 cores.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from robustlens.science import evaluation as ev

EPS = 0.25  # the linear model below keeps some images at this budget and loses all at 0.5


def synthetic(n: int, seed: int):
    """Ten classes, each a fixed random binary 8x8 pattern (contrast 0.5) plus a little noise."""
    protos = (torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(123)) > 0.5).float()
    y = torch.arange(n) % 10
    noise = 0.05 * torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return (0.25 + 0.5 * protos[y] + noise).clamp(0, 1), y


class Quantised(nn.Module):
    """Gradient masking on purpose: the input is rounded to quarters (round's gradient is zero),
    so every gradient-based attack sees zero gradients while the model is no more robust."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


class Exploding(nn.Module):
    """Fails on any forward pass: proves that bad arguments are rejected before compute."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        raise AssertionError("computed before validating the arguments")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: threads only add overhead on a shared 2-core machine (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    x, y = synthetic(640, seed=1)
    opt = torch.optim.Adam(net.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def images():
    return synthetic(64, seed=2)


# ---------------------------------------------------------------------------------------------


def test_paired_exact_p():
    assert ev.paired_exact_p(0, 0) == 1.0
    assert ev.paired_exact_p(5, 0) == pytest.approx(1 / 32)
    assert ev.paired_exact_p(0, 5) == 1.0
    assert ev.paired_exact_p(3, 1) == pytest.approx(5 / 16)  # P(X >= 3), X ~ Bin(4, 1/2)


def test_pgd_and_square_are_seeded(model, images):
    x, y = images
    model.train()  # the attack must switch to eval and give the flag back
    before = torch.get_rng_state()
    a = ev.pgd_correct(model, x, y, EPS, steps=10, restarts=2, seed=3)
    b = ev.pgd_correct(model, x, y, EPS, steps=10, restarts=2, seed=3)
    assert torch.equal(torch.get_rng_state(), before), "the caller's global RNG was touched"
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    assert a.dtype == torch.bool and a.shape == (len(y),)
    assert torch.equal(a, b)
    ev.pgd_correct(model, x, y, EPS, steps=10, restarts=2, seed=4)  # another seed runs (may differ)
    s1 = ev.square_correct(model, x, y, EPS, n_queries=100, seed=3)
    s2 = ev.square_correct(model, x, y, EPS, n_queries=100, seed=3)
    assert torch.equal(s1, s2)
    assert torch.equal(torch.get_rng_state(), before)
    # restarts only add breaks; an image misclassified clean counts as broken
    one = ev.pgd_correct(model, x, y, EPS, steps=10, restarts=1, seed=3)
    clean = ev.clean_correct(model, x, y)
    assert not (a & ~one).any() and not (a & ~clean).any()


def test_run_attack_matches_the_direct_call(model, images):
    x, y = images
    direct = ev.pgd_correct(model, x, y, EPS, 10, seed=5, batch_size=16)
    named = ev.run_attack(
        model,
        x,
        y,
        "pgd",
        eps=EPS,
        steps=10,
        alpha=2.5 * EPS / 10,
        restarts=1,
        seed=5,
        batch_size=16,
    )
    assert torch.equal(direct, named)
    assert torch.equal(ev.run_attack(model, x, y, "clean"), ev.clean_correct(model, x, y))


def test_suite_worst_case_and_summary(model, images):
    x, y = images
    table = ev.evaluate_suite(
        model, x, y, EPS, ["pgd10", "square"], seed=0, batch_size=32, square={"n_queries": 200}
    )
    assert list(table.columns) == ["index", "label", "clean", "pgd10", "square", "worst_case"]
    assert len(table) == len(y) and (table["label"].to_numpy() == y.numpy()).all()
    for col in ("clean", "pgd10", "square"):
        assert (table["worst_case"] <= table[col]).all()
    assert (table["worst_case"] == table[["clean", "pgd10", "square"]].all(axis=1)).all()

    extra = ev.add_attack_column(table, "adaptive", np.zeros(len(y), bool))
    assert not extra["worst_case"].any() and "adaptive" in extra.columns

    summary = ev.summarise(table)
    assert list(summary["attack"]) == ["clean", "pgd10", "square", "worst_case"]
    assert (summary["n"] == len(y)).all()
    assert (
        (summary["ci_low"] <= summary["accuracy"]) & (summary["accuracy"] <= summary["ci_high"])
    ).all()
    worst = summary.set_index("attack").loc["worst_case"]
    assert worst["accuracy"] <= summary["accuracy"].min() + 1e-12
    assert (worst["ci_low"], worst["ci_high"]) == ev.wilson_interval(int(worst["correct"]), len(y))


def test_autoattack_core_on_cpu(model, images):
    x, y = images[0][:8], images[1][:8]
    before = torch.get_rng_state()
    ok, warnings = ev.autoattack_correct(
        model, x, y, EPS, version="core", seed=0, device="cpu", return_warnings=True
    )
    assert torch.equal(torch.get_rng_state(), before)
    assert ok.dtype == torch.bool and ok.shape == (8,)
    assert not (ok & ~ev.clean_correct(model, x, y)).any()
    assert warnings == []
    # AutoAttack's warning about zero gradients is kept, not printed away
    _, masked_warnings = ev.autoattack_correct(
        Quantised(model), x, y, EPS, version="core", return_warnings=True
    )
    assert any("zero gradient" in w for w in masked_warnings)


def test_sanity_checks_pass_on_a_plain_model(model, images):
    x, y = images
    report = ev.sanity_checks(model, x, y, EPS, seed=0, square_queries=500)
    assert list(report.columns[:6]) == ["check", "setting", "accuracy", "n", "expected", "passed"]
    assert set(report["check"]) == {"eps_sweep", "more_steps", "more_restarts", "black_vs_white"}
    assert report["passed"].all(), report.to_string()


def test_sanity_checks_catch_gradient_masking(model, images):
    x, y = images
    report = ev.sanity_checks(Quantised(model), x, y, EPS, seed=0, square_queries=500)
    verdict = report.groupby("check")["passed"].first()
    # zero gradients: PGD never moves, so accuracy does not fall at large eps and the
    # black-box Square attack beats every white-box run
    assert not verdict["eps_sweep"], report.to_string()
    assert not verdict["black_vs_white"], report.to_string()


def _one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and ": " in msg, msg  # one line: what is wrong, then the fix
    return msg


@pytest.mark.parametrize("eps", [0.0, 1.0, 1.5, -0.1])
def test_bad_eps_raises_before_compute(images, eps):
    x, y = images
    for call in (
        lambda: ev.pgd_correct(Exploding(), x, y, eps, 10),
        lambda: ev.autoattack_correct(Exploding(), x, y, eps),
        lambda: ev.square_correct(Exploding(), x, y, eps, 10),
        lambda: ev.evaluate_suite(Exploding(), x, y, eps, ["pgd10"]),
        lambda: ev.sanity_checks(Exploding(), x, y, eps),
    ):
        assert "0 < eps < 1" in _one_line_error(call)


def test_bad_attack_names_settings_and_shapes_raise_before_compute(images):
    x, y = images
    msg = _one_line_error(ev.evaluate_suite, Exploding(), x, y, 0.1, ["pgd10", "pgdd"])
    assert "pgdd" in msg and "autoattack_core" in msg
    _one_line_error(ev.evaluate_suite, Exploding(), x, y, 0.1, ["pgd10"], square={"n_queries": 10})
    _one_line_error(ev.evaluate_suite, Exploding(), x, y, 0.1, ["pgd20"], pgd20={"steps": 10})
    _one_line_error(ev.evaluate_suite, Exploding(), x, y, 0.1, ["square"], square={"queries": 10})
    _one_line_error(ev.run_attack, Exploding(), x, y, "nope", eps=0.1)
    msg = _one_line_error(ev.evaluate_suite, Exploding(), x, y[:-1], 0.1, ["pgd10"])
    assert "64 images" in msg and "63 labels" in msg
    _one_line_error(ev.pgd_correct, Exploding(), x, y[:-1], 0.1, 10)
    _one_line_error(ev.autoattack_correct, Exploding(), x[:3], y, 0.1)
    _one_line_error(ev.autoattack_correct, Exploding(), x, y, 0.1, version="plus")
    _one_line_error(ev.pgd_correct, Exploding(), x * 2 + 1, y, 0.1, 10)  # not in [0, 1]
    _one_line_error(ev.pgd_correct, Exploding(), x, y, 0.1, 0)  # steps
    _one_line_error(ev.sanity_checks, Exploding(), x, y, 0.1, restarts=0)
    _one_line_error(ev.pgd_correct, Exploding(), x, y, 0.1, 10, seed=None)  # never the clock


def test_registry_names_the_book_uses():
    for name in ("clean", "pgd", "pgd20", "autoattack_core", "autoattack_standard", "square"):
        assert name in ev.ATTACKS
    assert ev.ATTACKS["square"].kind == "black-box"
    assert ev.ATTACKS["autoattack_core"].defaults["version"] == "core"
    assert ev.autoattack_version().startswith("pyautoattack")
    assert math.isclose(ev.Z95, 1.959964, abs_tol=1e-6)
