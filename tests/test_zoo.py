import pytest
import torch

from _support import needs_fashion_mnist
from robustlens.science import profiles, training, zoo


def tiny_profile():
    return profiles.get_profile("smoke", train_size=128, test_size=64, batch_size=64)


@needs_fashion_mnist
def test_trains_once_then_reuses_the_cached_model(tmp_cache, monkeypatch):
    p = tiny_profile()
    first = zoo.get(p, "cnn", "standard", seed=0, device="cpu")
    assert 0.0 <= first.metrics["clean_acc"] <= 1.0 and first.metrics["n_eval"] == 64
    # Robust accuracy cannot exceed clean accuracy by much on the same images.
    assert first.metrics["pgd_acc"] <= first.metrics["clean_acc"] + 0.05

    def must_not_train(*a, **k):
        raise AssertionError("a cached model was retrained")

    monkeypatch.setattr(training, "train", must_not_train)
    again = zoo.get(p, "cnn", "standard", seed=0, device="cpu")
    assert again.key == first.key and again.metrics == first.metrics
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    # A different specification is a different entry.
    assert zoo.make_spec(p, "cnn", "standard", 1) != zoo.make_spec(p, "cnn", "standard", 0)


@needs_fashion_mnist
def test_pgd_training_is_more_robust_than_standard(tmp_cache):
    """Even at this tiny scale PGD-AT must beat standard training under PGD (or something is wrong)."""
    p = profiles.get_profile("smoke", train_size=2048, test_size=256, epochs=2, pgd_train_steps=3)
    std = zoo.get(p, "cnn", "standard", device="cpu")
    rob = zoo.get(p, "cnn", "pgd", device="cpu")
    assert rob.metrics["pgd_acc"] > std.metrics["pgd_acc"] + 0.1
    # Trained at all (chance is 0.1); the exact value moves with the thread count's rounding.
    assert std.metrics["clean_acc"] > 0.35


@needs_fashion_mnist
def test_corrupt_checkpoint_is_retrained_not_loaded(tmp_cache, capsys):
    p = tiny_profile()
    entry = zoo.get(p, "resnet", "standard", device="cpu")
    ckpt = tmp_cache / "models" / entry.key / "model.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    again = zoo.get(p, "resnet", "standard", device="cpu")
    assert "fails the checksum of model.pt" in capsys.readouterr().err
    for a, b in zip(entry.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_spec_fails_before_training():
    p = tiny_profile()
    with pytest.raises(ValueError, match="unknown training method 'adv'"):
        zoo.get(p, "cnn", "adv")
    with pytest.raises(ValueError, match="unknown architecture"):
        zoo.get(p, "vgg16", "standard")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            zoo.resolve_device("cuda")


def test_each_recipe_gives_a_finite_differentiable_loss():
    from robustlens.science import models

    p = tiny_profile()
    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for name in training.RECIPES:
        model = models.build_model("resnet")
        params = {"lam": 0.1, "norm": "l1"} if name == "gradpen" else {}
        loss = training.make_recipe(name, p, **params)(model, x, y)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(q.grad is not None for q in model.parameters())


class _Rounded(torch.nn.Module):
    """Masks its gradients on purpose (round's gradient is zero): AutoAttack flags that."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


@needs_fashion_mnist
def test_autoattack_flags_are_kept_with_the_cached_result_not_printed(tmp_cache, capsys):
    p = tiny_profile()
    entry = zoo.ZooEntry(_Rounded().eval(), {}, {"label": "rounded"}, "rounded-model-key")
    first = zoo.correct(entry.model, entry.key, p, "autoattack_core", 8, "cpu", label="rounded")
    flags = zoo.autoattack_flags(entry, p, "autoattack_core", 8)
    assert any("zero gradient" in f for f in flags)
    # Said once in the log, never into a notebook's output (where a cached rerun would lose it).
    assert "zero gradient" not in capsys.readouterr().out
    # The cached entry gives the same flags without attacking again.
    again = zoo.correct(entry.model, entry.key, p, "autoattack_core", 8, "cpu", label="rounded")
    assert (again == first).all() and zoo.autoattack_flags(entry, p, "autoattack_core", 8) == flags
    with pytest.raises(ValueError, match="run zoo.correct or zoo.robustness first"):
        zoo.autoattack_flags(entry, p, "autoattack_core", 16)
    with pytest.raises(ValueError, match="has no flags"):
        zoo.autoattack_flags(entry, p, "pgd", 8)


def test_awnet_epochs_change_only_the_awnet_spec():
    cpu = profiles.get_profile("cpu")
    assert zoo.make_spec(cpu, "cnn", "awnet", 0)["train"]["epochs"] == cpu.awnet_epochs == 2
    assert zoo.make_spec(cpu, "cnn", "pgd", 0)["train"]["epochs"] == cpu.epochs == 1
    smoke = profiles.get_profile("smoke")
    assert zoo.make_spec(smoke, "cnn", "awnet", 0)["train"]["epochs"] == smoke.epochs
    with pytest.raises(profiles.ProfileError, match="awnet_epochs=0"):
        profiles.get_profile("cpu", awnet_epochs=0)


class _RoundedTemplates(torch.nn.Module):
    """A nearest-class-mean classifier of Fashion-MNIST (no training: the weights are the classes'
    mean images) that rounds its input, so its gradient is zero: PGD cannot move it, Square can."""

    def __init__(self, images, labels):
        super().__init__()
        means = torch.stack([images[labels == k].flatten(1).mean(0) for k in range(10)])
        self.weight = torch.nn.Parameter(means)
        self.bias = torch.nn.Parameter(-0.5 * (means**2).sum(1))

    def forward(self, x):
        return torch.round(x * 4).flatten(1) / 4 @ self.weight.T + self.bias


@needs_fashion_mnist
def test_black_box_check_fails_on_masked_gradients_and_passes_against_a_stronger_attack(
    tmp_cache,
):
    import pandas as pd

    from robustlens.science import data

    p = tiny_profile()
    train = data.training_split(p)
    model = _RoundedTemplates(train.images, train.labels).eval()
    entry = zoo.ZooEntry(model, {}, {"label": "templates"}, "rounded-templates-key")
    clean = zoo.correct(model, entry.key, p, "clean", 64, "cpu")
    pgd = zoo.correct(model, entry.key, p, "pgd", 64, "cpu")
    assert clean.mean() > 0.4 and (pgd == clean).all()  # PGD gets no gradient to follow

    masked = zoo.black_box_check(entry, p, pd.DataFrame({"pgd": pgd}), "cpu")
    assert list(masked.check.unique()) == ["black_vs_adaptive"] and not masked.passed.any()
    assert masked.accuracy.iloc[0] < masked.accuracy.iloc[1]  # Square below PGD
    # A white-box attack that breaks every image: Square cannot be stronger than it.
    broken = pd.DataFrame({"pgd": pgd, "strong": pgd & False})
    assert zoo.black_box_check(entry, p, broken, "cpu").passed.all()
    with pytest.raises(ValueError, match="boolean per-image column"):
        zoo.black_box_check(entry, p, pd.DataFrame({"pgd": pgd.astype(float)}), "cpu")
