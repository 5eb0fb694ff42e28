"""A model is its spec: same spec, same weights, in any process and any order of work; and the
cache key changes exactly when what trains a model changes."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import torch

from _support import ROOT, needs_fashion_mnist
from robustlens.science import cache, models, seeding

# Runs in a fresh interpreter: optionally burns global RNG draws and trains another model first,
# then trains the spec under test and prints its key, checkpoint path and metrics.
_TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from robustlens.science import profiles, zoo
    p = profiles.get_profile("smoke", train_size=256, test_size=64, batch_size=64)
    if sys.argv[1] == "disturbed":
        torch.manual_seed(12345)
        torch.rand(1000)
        zoo.get(p, "resnet", "standard", seed=1, device="cpu")  # other work first, other RNG use
        torch.randn(77)
    e = zoo.get(p, "cnn", "pgd", seed=0, device="cpu")
    print(json.dumps({"key": e.key, "metrics": {k: e.metrics[k] for k in ("clean_acc", "pgd_acc", "final_train_loss")}}))
""")


def _run(script: str, *args: str, env_extra: dict) -> dict:
    env = {**os.environ, "TQDM_DISABLE": "1", **env_extra}
    res = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@needs_fashion_mnist
def test_same_spec_same_weights_in_two_processes_with_different_prior_rng_use(tmp_path):
    plain = _run(_TRAIN_SCRIPT, "plain", env_extra={"ROBUSTLENS_CACHE": str(tmp_path / "a")})
    disturbed = _run(
        _TRAIN_SCRIPT, "disturbed", env_extra={"ROBUSTLENS_CACHE": str(tmp_path / "b")}
    )
    assert plain["key"] == disturbed["key"]
    a = (tmp_path / "a" / "models" / plain["key"] / "model.pt").read_bytes()
    b = (tmp_path / "b" / "models" / disturbed["key"] / "model.pt").read_bytes()
    assert a == b, "the same spec gave different checkpoints"
    assert plain["metrics"] == disturbed["metrics"]


def test_initialisation_depends_on_seed_and_architecture_only():
    torch.manual_seed(1)
    a = models.build_model("cnn", 1, 10, seed=3)
    torch.rand(10_000)  # whatever ran before must not matter
    b = models.build_model("cnn", 1, 10, seed=3)
    c = models.build_model("cnn", 1, 10, seed=4)
    for (name, wa), wb, wc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values()
    ):
        assert torch.equal(wa, wb), name
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    # Building a seeded model leaves the caller's global RNG where it was.
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    models.build_model("resnet", 1, 10, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_derived_seeds_are_stable_and_separate_purposes():
    assert seeding.derive(0, "init", "cnn") == seeding.derive(0, "init", "cnn")
    assert (
        len({seeding.derive(s, p) for s in range(3) for p in ("init", "data-order", "recipe")}) == 9
    )
    # A fixed value: derived seeds must not change between Python versions or processes.
    assert (
        seeding.derive(0, "init")
        == int.from_bytes(__import__("hashlib").sha256(b"0/init").digest()[:8], "big") >> 1
    )


_KEY_SCRIPT = textwrap.dedent("""
    import json
    from robustlens.science import profiles, zoo
    p = profiles.get_profile("cpu")
    print(json.dumps({r: zoo.model_key(zoo.make_spec(p, "cnn", r, 0)) for r in ("standard", "pgd", "trades")}))
""")


def _keys_with_edited_package(tmp_path, name: str, edit) -> dict:
    """Model keys computed by a copy of the package in which ``edit`` changed some files."""
    root = tmp_path / name
    shutil.copytree(
        ROOT / "lib" / "robustlens",
        root / "robustlens",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    edit(root / "robustlens")
    return _run(_KEY_SCRIPT, env_extra={"PYTHONPATH": str(root)})


def test_comment_and_docstring_edits_keep_every_key_but_a_step_size_rule_change_retrains(tmp_path):
    original = _keys_with_edited_package(tmp_path, "original", lambda pkg: None)

    def reword(pkg):
        for module in ("training.py", "attacks.py", "models.py", "data.py", "seeding.py"):
            path = pkg / "science" / module
            text = path.read_text()
            text = text.replace('"""', '"""Reworded. ', 1)  # the module docstring
            path.write_text("# a new comment at the top\n" + text + "\n# and one at the end\n")

    assert _keys_with_edited_package(tmp_path, "comments", reword) == original

    def new_step_rule(pkg):
        path = pkg / "science" / "profiles.py"
        text = path.read_text()
        rule = "return 2.5 * self.eps / self.pgd_train_steps"
        assert rule in text, "the PGD training step-size rule moved: update this test"
        path.write_text(text.replace(rule, "return 2.0 * self.eps / self.pgd_train_steps"))

    changed = _keys_with_edited_package(tmp_path, "step_rule", new_step_rule)
    assert changed["pgd"] != original["pgd"] and changed["trades"] != original["trades"]
    assert changed["standard"] == original["standard"]  # standard training runs no attack

    def new_optimiser(pkg):
        path = pkg / "science" / "training.py"
        text = path.read_text()
        assert "momentum=0.9" in text
        path.write_text(text.replace("momentum=0.9", "momentum=0.8"))

    assert (
        _keys_with_edited_package(tmp_path, "optimiser", new_optimiser)["standard"]
        != original["standard"]
    )


def test_normalised_source_ignores_comments_and_docstrings_only():
    a = 'def f(x):\n    """Doc."""\n    return x + 1  # add one\n'
    b = '# header\ndef f(x):\n    """Other doc."""\n\n    return x + 1\n'
    c = "def f(x):\n    return x + 2\n"
    assert cache.normalised_source(a) == cache.normalised_source(b) != cache.normalised_source(c)


def test_the_training_monitor_logs_per_epoch_and_never_changes_the_weights():
    from robustlens.science import profiles, training

    p = profiles.get_profile("smoke")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(96, 1, 28, 28, generator=gen), torch.randint(0, 10, (96,), generator=gen)
    runs = []
    for monitor in (None, training.pgd_monitor(x[:16], y[:16], 0.1, 3)):
        model = models.build_model("cnn", 1, 10, seed=0)
        log = training.train(
            model,
            x,
            y,
            training.make_recipe("fast", p),
            epochs=2,
            batch_size=32,
            lr=0.05,
            weight_decay=5e-4,
            seed=0,
            monitor=monitor,
        )
        runs.append((model.state_dict(), log))
    (a, log_a), (b, log_b) = runs
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert "monitor" not in log_a
    assert [m["epoch"] for m in log_b["monitor"]] == [1, 2]
    assert all(0.0 <= m["pgd_acc"] <= m["clean_acc"] + 0.2 for m in log_b["monitor"])
