"""APGD with the router in the loss (robustlens.science.router_apgd)."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustlens.science import awnet, router_apgd


def test_an_image_broken_by_an_earlier_iterate_stays_broken():
    # A loss whose logits misclassify at one iterate only (the third evaluation): the last
    # iterate is correct again, and the image must still count as broken.
    calls = {"n": 0}

    def loss_fn(adv, y, target=None):
        calls["n"] += 1
        wrong = calls["n"] == 3
        logits = torch.tensor([[0.0, 1.0]] if wrong else [[1.0, 0.0]]).expand(len(y), 2)
        return adv.flatten(1).sum(1), logits

    x, y = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, dtype=torch.long)
    broken = router_apgd.apgd(loss_fn, x, y, 0.1, 10, torch.Generator().manual_seed(0))
    assert calls["n"] == 11  # the start and ten steps, each iterate scored
    assert broken.tolist() == [True]


def test_the_step_size_halves_at_apgds_checkpoints():
    points = router_apgd._checkpoints(100)
    assert points == [22, 41, 57, 70, 80, 87, 93, 99]  # AutoAttack's own counting
    assert all(b > a for a, b in zip(points, points[1:]))


def test_log_p_clean_comes_from_log_softmax_and_keeps_its_gradient_when_confident():
    heads = [torch.tensor([[0.3, -0.2]]), torch.tensor([[1.0, 0.5]])]
    expected = torch.log(torch.stack([F.softmax(h, 1)[:, 0] for h in heads]).mean(0))
    assert router_apgd.log_p_clean(heads) == pytest.approx(expected, abs=1e-6)
    # A head sure the input is adversarial: 1 - softmax rounds to 0 and log(0 + 1e-12) is flat;
    # log-softmax is -200 with gradient 1 on the clean logit.
    confident = torch.tensor([[0.0, 200.0]], requires_grad=True)
    value = router_apgd.log_p_clean([confident])
    assert value.item() == pytest.approx(-200.0)
    (grad,) = torch.autograd.grad(value.sum(), confident)
    assert grad[0, 0].item() == pytest.approx(1.0)
    masked = torch.log(1 - F.softmax(confident, 1)[:, 1] + 1e-12)
    assert torch.autograd.grad(masked.sum(), confident)[0].abs().max().item() < 1e-20


def test_the_margin_is_positive_exactly_when_misclassified_or_on_target():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 0])
    assert router_apgd.margin(logits, y).tolist() == [-1.0, 3.0]
    target = torch.tensor([2, 2])
    assert router_apgd.margin(logits, y, target).tolist() == [-2.0, -2.0]


@pytest.fixture(scope="module")
def net():
    return awnet.build_awnet("cnn", 1, 10, seed=0).eval()


def test_router_apgd_on_an_awnet_never_reports_more_than_clean(net):
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(6, 1, 28, 28, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    with torch.no_grad():
        clean = net(x).argmax(1) == y
    for loss, targeted in (("margin", False), ("ce", False), ("margin", True)):
        ok = router_apgd.router_apgd_correct(
            net, x, y, 0.1, loss=loss, kappa=0.5, targeted=targeted, n_targets=2, steps=5
        )
        assert ok.dtype == torch.bool and ok.shape == (6,)
        assert not (ok & ~clean).any()
    again = router_apgd.router_apgd_correct(net, x, y, 0.1, kappa=0.5, steps=5)
    assert torch.equal(again, router_apgd.router_apgd_correct(net, x, y, 0.1, kappa=0.5, steps=5))


def test_bad_arguments_are_refused_in_one_line(net):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="loss='dlr'"):
        router_apgd.router_apgd_correct(net, x, y, 0.1, loss="dlr")
    with pytest.raises(ValueError, match="kappa=-1"):
        router_apgd.router_apgd_correct(net, x, y, 0.1, kappa=-1)
    static = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with pytest.raises(ValueError, match="needs a model with an adversarial router"):
        router_apgd.router_apgd_correct(static, x, y, 0.1)
    assert math.isfinite(router_apgd.MOMENTUM)


def test_every_setting_of_router_apgd_is_in_its_cache_key():
    from robustlens.science import zoo
    from robustlens.science.profiles import get_profile

    p = get_profile("smoke")
    settings = zoo.attack_settings(p, "router_apgd", loss="ce", kappa=0.25, targeted=True)
    assert settings == {
        "eps": p.eps,
        "steps": 100,
        "restarts": 1,
        "loss": "ce",
        "kappa": 0.25,
        "targeted": True,
        "n_targets": 3,
    }
    keys = {zoo._eval_spec("m", p, "router_apgd", 8, kappa=k)[1] for k in (0.25, 1.0)}
    assert len(keys) == 2
    with pytest.raises(ValueError, match="takes no setting"):
        zoo.attack_settings(p, "router_apgd", alpha=0.1)
