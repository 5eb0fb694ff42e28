"""AW-Net: the weight-varied conv, MixBN, the router, the twin builder and the training recipe."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import (
    adaptive_attacks,
    awnet,
    awnet_training,
    evaluation,
    model_cost,
    models,
    zoo,
)
from robustlens.science.profiles import get_profile


def test_varied_conv_equals_a_conv_with_per_sample_filters():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    x, s = torch.randn(4, 3, 8, 8), torch.rand(4, 5) * 2
    got = awnet.WeightVariedConv2d(conv)(x, s)
    want = torch.cat(
        [
            F.conv2d(x[n : n + 1], conv.weight * s[n][:, None, None, None], padding=1)
            for n in range(4)
        ]
    )
    torch.testing.assert_close(got, want)


def test_varied_conv_refuses_a_bias():
    with pytest.raises(ValueError, match="without bias"):
        awnet.WeightVariedConv2d(nn.Conv2d(1, 2, 3))


@pytest.mark.parametrize("arch", ["cnn", "resnet", "deepcnn"])
def test_the_twin_starts_as_its_static_model(arch):
    # Signals start at exactly 1 and both BatchNorms of a MixBN start equal, so at
    # initialisation the AW-Net computes what the static model of the same seed computes.
    x = torch.rand(6, 1, 28, 28)
    static = models.build_model(arch, 1, 10, seed=3).eval()
    net = awnet.build_awnet(arch, 1, 10, seed=3).eval()
    torch.testing.assert_close(net(x), static(x))
    signals, type_logits = net.router(x)
    assert all(torch.equal(s, torch.ones_like(s)) for s in signals)
    assert len(type_logits) == 1 and type_logits[0].shape == (6, 2)


def test_same_seed_same_router_other_seed_other_router():
    a, b, c = (awnet.build_awnet("cnn", 1, 10, seed=s) for s in (0, 0, 1))
    wa, wb, wc = (n.router.extractor[0].weight for n in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_which_convs_vary():
    n_convs = 5  # the plain CNN
    counts = {v: len(awnet.build_awnet("cnn", vary=v).router.signal_heads) for v in awnet.VARY}
    assert counts == {"all": n_convs, "early": 3, "late": 2, "none": 0}
    # ResNet-8: stem + 2 convs in each of 3 blocks vary; the two 1x1 shortcuts never do.
    net = awnet.build_awnet("resnet")
    assert len(net.router.signal_heads) == 7 and len(awnet.unit_list(net)) == 9


def test_mixbn_switches_hard_in_training_and_mixes_at_test_time():
    bn = awnet.MixBN(2)
    x = torch.cat([torch.zeros(4, 2, 3, 3), torch.full((4, 2, 3, 3), 10.0)])
    types = torch.tensor([0] * 4 + [1] * 4)
    routing = awnet.Routing([], [torch.zeros(8, 2)], types=types)
    bn.train()(x, routing, 0)
    # Each BN saw its own rows only: running means moved towards 0 and towards 10.
    assert torch.allclose(bn.clean.running_mean, torch.zeros(2))
    assert torch.allclose(bn.adv.running_mean, torch.ones(2))  # momentum 0.1 of 10
    bn.eval()
    logits = torch.tensor([[0.0, 5.0]]).repeat(8, 1)  # p(adversarial) ~ 0.993
    soft = bn(x, awnet.Routing([], [logits]), 0)
    p = torch.softmax(logits, 1)[:, 1][:, None, None, None]
    torch.testing.assert_close(soft, (1 - p) * bn.clean(x) + p * bn.adv(x))
    forced = bn(x, awnet.Routing([], [logits], forced=0), 0)
    torch.testing.assert_close(forced, bn.clean(x))


def test_one_bn_ablation_has_no_adversarial_bn():
    net = awnet.build_awnet("cnn", mixbn=False)
    assert all(u.bn.adv is None for u in awnet.unit_list(net))


def test_per_block_type_heads():
    net = awnet.build_awnet("resnet", type_heads="per_block")
    assert len(net.router.type_heads) == 4  # stem + three blocks
    assert net.head_of_unit[0] == 0 and set(net.head_of_unit) == {0, 1, 2, 3}
    assert net.p_adv(torch.rand(2, 1, 28, 28)).shape == (2,)


def test_forced_router_is_scoped_and_checked():
    net = awnet.build_awnet("cnn").eval()
    with net.forced(1):
        assert net._forced == 1
    assert net._forced is None
    with pytest.raises(ValueError, match="0 \\(clean\\) or 1"):
        with net.forced(2):
            pass


def test_effective_filters_are_scaled_weights():
    net = awnet.build_awnet("cnn", seed=0)
    with torch.no_grad():
        net.router.signal_heads[0].bias.fill_(1.0)  # signal 2 * sigmoid(1) on the first conv
    x = torch.rand(3, 1, 28, 28)
    name, w = awnet.effective_filters(net, x)[0]
    base = awnet.unit_list(net)[0].conv.conv.weight
    assert w.shape == (3, *base.shape)
    torch.testing.assert_close(w[1], base * 2 * torch.sigmoid(torch.tensor(1.0)))


def test_cost_counts_match_a_hand_count():
    conv = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 5 * 5, 10)
    )
    assert model_cost.forward_flops(conv, (1, 5, 5)) == 2 * (4 * 25 * 9 + 100 * 10)
    static, net = models.build_model("cnn"), awnet.build_awnet("cnn")
    # The twin shares the static model's convs and adds a router and a second BN per conv.
    extra = model_cost.count_parameters(net) - model_cost.count_parameters(static)
    assert 0 < extra < 0.2 * model_cost.count_parameters(static)
    assert model_cost.forward_flops(net, (1, 28, 28)) > model_cost.forward_flops(
        static, (1, 28, 28)
    )


def test_mtard_balance_moves_weight_to_the_slower_loss():
    b = awnet_training.Balance("mtard", rate=0.5)
    assert b.weights(2.0, 4.0) == (0.5, 0.5)  # first step: both at their start
    # The clean loss halved, the adversarial one did not move: the adversarial loss gains weight.
    w_nat, w_adv = b.weights(1.0, 4.0)
    assert w_nat == pytest.approx(0.5 - 0.5 * (0.5 - 0.5 / 1.5)) and w_adv == pytest.approx(
        1 - w_nat
    )
    fixed = awnet_training.Balance("fixed", rate=0.5)
    assert fixed.weights(1.0, 4.0) == (0.5, 0.5) == fixed.weights(0.1, 9.0)


def test_recipe_step_trains_router_and_classifier():
    p = get_profile("smoke")
    s = awnet_training.settings(p)
    teachers = [models.build_model("cnn", seed=k).eval() for k in (1, 2)]
    recipe = awnet_training.Recipe(s, *teachers)
    net = awnet.build_awnet("cnn", seed=0).train()
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = recipe(net, x, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert net.router.signal_heads[0].weight.grad.abs().sum() > 0  # the signals learn
    assert net.router.type_heads[0][-1].weight.grad.abs().sum() > 0  # the type head learns
    assert set(recipe.steps[0]) == {"loss_nat", "loss_adv", "type_loss", "type_acc", "w_nat"}


def test_settings_refuse_bad_values_in_one_line():
    p = get_profile("smoke")
    for bad, match in (
        ({"loss": "mse"}, "loss='mse': choose one of distill, ce"),
        ({"vary": "some"}, "vary='some'"),
        ({"teacher": "standard"}, "teacher='standard'"),
        ({"gamma": -1}, "gamma=-1.0 must be >= 0"),
        ({"depth": 3}, "takes no parameter"),
    ):
        with pytest.raises(ValueError, match=match):
            awnet_training.settings(p, **bad)
    with pytest.raises(ValueError, match="needs a standard and a robust teacher"):
        awnet_training.Recipe(awnet_training.settings(p), None, None)


def test_zoo_trains_awnet_from_its_teachers_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTLENS_CACHE", str(tmp_path))
    p = get_profile("smoke", train_size=256, zoo_test_size=64, test_size=64)
    entry = zoo.get(p, "cnn", "awnet", seed=0, device="cpu")
    assert isinstance(entry.model, awnet.AWNet)
    teachers = entry.spec["teachers"]
    assert teachers["standard"] == zoo.model_key(zoo.make_spec(p, "cnn", "standard", 0))
    assert teachers["robust"] == zoo.model_key(zoo.make_spec(p, "cnn", "pgd", 0))
    log = entry.metrics
    assert len(log["steps"]) == 2 and {"type_acc_clean", "type_acc_adv"} <= set(log["monitor"][0])
    again = zoo.get(p, "cnn", "awnet", seed=0, device="cpu")
    for a, b in zip(entry.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    ce = zoo.make_spec(p, "cnn", "awnet", 0, loss="ce")
    assert zoo.model_key(ce) != entry.key  # an ablation is another model
    assert zoo.progress(entry)["median_rel_change"] >= 0
    # The adaptive attacks are cached per setting; transfer records its source model.
    k1 = zoo.correct(entry.model, entry.key, p, "router_evasion", 16, "cpu", kappa=2.0)
    teacher = zoo.get(p, "cnn", "pgd", seed=0, device="cpu")
    tr = zoo.correct(entry.model, entry.key, p, "transfer", 16, "cpu", source=teacher)
    assert k1.shape == tr.shape == (16,)
    evals = {m["spec"]["attack"]: m["spec"] for m in _metas(tmp_path / "evals")}
    assert evals["router_evasion"]["settings"]["kappa"] == 2.0
    assert evals["transfer"]["source"] == teacher.key
    with pytest.raises(ValueError, match="pass source="):
        zoo.correct(entry.model, entry.key, p, "transfer", 16, "cpu")


def _metas(folder):
    import json

    return [json.loads(f.read_text()) for f in folder.glob("*/meta.json")]


def _tiny_batch(n=12):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_router_evasion_pushes_the_type_head_to_clean():
    net = awnet.build_awnet("cnn", seed=0).eval()
    x, y = _tiny_batch()
    before = net.p_adv(x)

    def only_evade(adv, labels):  # kappa alone: maximise log p(clean)
        return torch.log(1 - net.p_adv(adv) + 1e-12).mean()

    adv = adaptive_attacks._pgd_on(only_evade, x, y, 0.1, 0.025, 10, torch.Generator())
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert net.p_adv(adv).mean() < before.mean()


def _smooth_batch(n=48):
    """Smooth images (7x7 noise upsampled): PGD's sign pattern is easy to see on them."""
    g = torch.Generator().manual_seed(1)
    return F.interpolate(torch.rand(n, 1, 7, 7, generator=g), size=28, mode="bilinear")


def _train_router(net, x, eps=0.1, steps=100):
    """Teach the router's type head clean (0) from PGD (1) examples of ``x`` (the classifier
    stays as built); labels are the net's own clean predictions, so every image starts correct."""
    with torch.no_grad():
        y = net.eval()(x).argmax(1)
    x_adv = adaptive_attacks.router_evasion_examples(net, x, y, eps, 0.0, 5)
    types = torch.cat([torch.zeros(len(x)), torch.ones(len(x))]).long()
    opt = torch.optim.Adam(net.router.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        _, type_logits = net.router.train()(torch.cat([x, x_adv]))
        F.cross_entropy(type_logits[0], types).backward()
        opt.step()
    net.eval()
    return y


def test_router_evasion_on_a_trained_router_lowers_p_adv_and_never_beats_pgd():
    torch.manual_seed(0)
    net = awnet.build_awnet("cnn", seed=0)
    x = _smooth_batch()
    y = _train_router(net, x)
    x_pgd = adaptive_attacks.router_evasion_examples(net, x, y, 0.1, 0.0, 10)
    x_evade = adaptive_attacks.router_evasion_examples(net, x, y, 0.1, 16.0, 10)
    with torch.no_grad():
        p_clean, p_pgd, p_evade = (float(net.p_adv(v).mean()) for v in (x, x_pgd, x_evade))
    print(f"p_adv: clean {p_clean:.3f}, PGD {p_pgd:.3f}, evasion {p_evade:.3f}")
    assert p_clean < 0.2 and p_pgd > 0.7, (
        "the router did not learn its job: the test proves nothing"
    )
    assert p_evade < p_pgd - 0.3  # the evasion term persuades a trained router
    pgd = evaluation.run_attack(net, x, y, "pgd", eps=0.1, steps=10, seed=3)
    for kappa in (1.0, 16.0):
        evade = evaluation.run_attack(
            net, x, y, "router_evasion", eps=0.1, steps=10, seed=3, kappa=kappa
        )
        assert not (evade & ~pgd).any()  # never an image PGD alone breaks
        assert evade.float().mean() <= pgd.float().mean()
    zero = evaluation.run_attack(net, x, y, "router_evasion", eps=0.1, steps=10, seed=3, kappa=0)
    assert torch.equal(zero, pgd)  # kappa = 0 is PGD itself


@pytest.mark.parametrize("signal_range", [(0, 2), (0.5, 1.5), (0, 4)])
def test_signal_is_one_at_zero_and_stays_in_its_range(signal_range):
    z = torch.tensor([-50.0, -1.0, 0.0, 1.0, 50.0])
    s = awnet.signal(z, signal_range)
    assert abs(float(s[2]) - 1) < 1e-6
    assert signal_range[0] <= float(s.min()) and float(s.max()) <= signal_range[1]
    assert torch.all(s[1:] >= s[:-1])
    net = awnet.build_awnet("cnn", seed=0, signal_range=signal_range)
    assert net.router.signal_range == tuple(map(float, signal_range))


@pytest.mark.parametrize("bad", [(-1, 2), (0, 1), (1.2, 3), (2, 0), "wide", (0, float("inf"))])
def test_a_signal_range_that_cannot_scale_filters_is_refused_before_compute(bad):
    with pytest.raises(ValueError, match="signal_range"):
        awnet.build_awnet("cnn", signal_range=bad)
    with pytest.raises(ValueError, match="signal_range"):
        zoo.make_spec(get_profile("smoke"), "cnn", "awnet", 0, signal_range=bad)


def test_adaptive_attacks_score_per_image_and_never_revive_an_image():
    net = awnet.build_awnet("cnn", seed=0).eval()
    static = models.build_model("cnn", seed=1).eval()
    x, y = _tiny_batch()
    clean = evaluation.clean_correct(net, x, y)
    for name, extra in (
        ("router_evasion", {"kappa": 2.0}),
        ("forced_clean", {}),
        ("forced_adv", {}),
        ("transfer", {"source": static}),
    ):
        ok = evaluation.run_attack(net, x, y, name, eps=0.1, steps=3, seed=0, **extra)
        assert ok.dtype == torch.bool and ok.shape == (12,) and not (ok & ~clean).any()
    assert net._forced is None  # the forced attacks restore the router
    with pytest.raises(ValueError, match="needs a model with an adversarial router"):
        evaluation.run_attack(static, x, y, "router_evasion", eps=0.1)
    with pytest.raises(ValueError, match="transfer needs source="):
        evaluation.run_attack(net, x, y, "transfer", eps=0.1)


def _unfused(self, x, routing):
    scale = None if self.signal_index is None else routing.signals[self.signal_index]
    return self.bn(self.conv(x, scale), routing, self.index)


@pytest.mark.parametrize("options", [{}, {"mixbn": False}, {"type_heads": "per_block"}])
def test_eval_mode_fold_equals_conv_signal_and_mixbn(options, monkeypatch):
    # In eval mode each unit folds signal and MixBN into one affine map: check it against the
    # plain path on a net whose statistics, signals and type heads are all non-trivial.
    torch.manual_seed(0)
    net = awnet.build_awnet("resnet", **options)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        for h in net.router.signal_heads:
            h.weight.normal_(0, 0.3)
    net.eval()
    x = torch.rand(5, 1, 28, 28)
    fused, forced = net(x), None
    with net.forced(1):
        forced = net(x)
    monkeypatch.setattr(awnet.Unit, "forward", _unfused)
    torch.testing.assert_close(fused, net(x))
    with net.forced(1):
        torch.testing.assert_close(forced, net(x))


def test_signal_one_and_a_one_hot_type_reduce_a_unit_to_the_plain_conv_and_its_bn():
    torch.manual_seed(0)
    unit = awnet.Unit(nn.Conv2d(2, 3, 3, padding=1, bias=False), 0, 0, mix=True).eval()
    with torch.no_grad():
        for bn in (unit.bn.clean, unit.bn.adv):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
    x = torch.rand(4, 2, 6, 6)
    ones = [torch.ones(4, 3)]
    for kind, bn in ((0, unit.bn.clean), (1, unit.bn.adv)):
        one_hot = torch.full((4, 2), -1e4)
        one_hot[:, kind] = 1e4  # p(type = kind) = 1
        got = unit(x, awnet.Routing(ones, [one_hot], head_of_unit=[0]))
        torch.testing.assert_close(got, bn(unit.conv.conv(x)), atol=1e-6, rtol=1e-6)
