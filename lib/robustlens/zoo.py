"""The book's own model zoo: "the model trained with this recipe under this profile", cached.

:func:`get` returns a trained model and its metrics, training it (with progress bars) only when
the cache holds no entry for the same specification, library code and package versions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from . import attacks, cache, data, models, profiles, theory, training
from .profiles import Profile

# The modules whose source decides what a trained model is; editing one retrains.
# (zoo.py and profiles.py are left out: the spec itself holds every profile value that matters.)
_CODE = [attacks, data, models, training]
# Extra modules per recipe, so that editing the theory chapter's code retrains only its models.
_RECIPE_CODE = {"gradpen": [theory]}
# Profile fields that do not change how a single model is trained or evaluated.
# Evaluation settings are not part of a model's identity: evaluations are cached separately, so
# one trained model serves a full-test-set evaluation and a quicker subset one alike.
_NOT_IN_SPEC = {"name", "arch", "architectures", "seeds", "extra", "test_size", "zoo_test_size",
                "pgd_eval_steps", "recipes", "gradpen_l1_lams", "gradpen_l2sq_lams", "at_eps_sweep"}


@dataclass
class ZooEntry:
    model: nn.Module
    metrics: dict
    spec: dict
    key: str

    @property
    def label(self) -> str:
        return self.spec["label"]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """A batch-of-one input shape, for tracing the model (e.g. ``filters.extract_convs``)."""
        return (1, *data.IMAGE_SHAPES[self.spec["train"]["dataset"]])


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is visible: use device='cpu' or 'auto'")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")
    return device


def make_spec(profile: Profile, arch: str, recipe: str, seed: int, **params) -> dict:
    if arch not in models.DESCRIPTIONS:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(models.DESCRIPTIONS)}")
    if recipe not in training.RECIPES:
        raise ValueError(f"unknown training method {recipe!r}: choose one of {', '.join(training.RECIPES)}")
    train_cfg = {k: v for k, v in dataclasses.asdict(profile).items() if k not in _NOT_IN_SPEC}
    if recipe != "trades":
        train_cfg.pop("trades_beta")
    suffix = "".join(f" {k}={v}" for k, v in sorted(params.items()))
    return {"arch": arch, "recipe": recipe, "seed": int(seed), "params": dict(sorted(params.items())),
            "train": train_cfg, "label": f"{arch}/{recipe}{suffix}/seed{seed}"}


def get(profile: Profile, arch: str, recipe: str, seed: int = 0, device: str = "auto",
        store: cache.Cache | None = None, eval_size: int | None | str = "profile", **params) -> ZooEntry:
    """The model ``arch`` trained by ``recipe`` with ``seed`` under ``profile``, with its metrics.

    The model comes from the cache or is trained now; its clean and PGD accuracy on ``eval_size``
    test images (default: the profile's ``test_size``; None: the full test set) likewise.
    """
    device = resolve_device(device)
    store = store or cache.Cache()
    spec = make_spec(profile, arch, recipe, seed, **params)
    key = cache.make_key(spec, _CODE + _RECIPE_CODE.get(recipe, []))
    if not store.has("models", key):
        ds = data.load_for_profile(profile)
        model = models.build_model(arch, ds.shape[0], len(ds.classes))
        recipe_fn = training.make_recipe(recipe, profile, **params)
        log = training.train(model, ds.train.images, ds.train.labels, recipe_fn, epochs=profile.epochs,
                             batch_size=profile.batch_size, lr=profile.lr, weight_decay=profile.weight_decay,
                             seed=seed, augment=profile.augment, device=device, desc=f"train {spec['label']}")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        store.put("models", key, {"model.pt": lambda p: torch.save(state, p)},
                  {"spec": spec, "train_log": log, "device": device,
                   "n_parameters": models.count_parameters(model)})
    meta = store.read_meta("models", key)
    model = _load_model(store, key, arch, profile).to(device).eval()
    n_eval = profile.test_size if eval_size == "profile" else eval_size
    metrics = {**meta["train_log"], **evaluation(model, key, profile, n_eval, device, store, spec["label"])}
    return ZooEntry(model, metrics, meta["spec"], key)


def _load_model(store: cache.Cache, key: str, arch: str, profile: Profile) -> nn.Module:
    model = models.build_model(arch, data.IMAGE_SHAPES[profile.dataset][0], 10)
    try:
        state = torch.load(store.path("models", key, "model.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except cache.CacheError:
        raise
    except Exception as exc:
        folder = store.entry_dir("models", key)
        raise cache.CacheError(f"cached checkpoint in {folder} does not load ({type(exc).__name__}): "
                               "delete that folder and rerun") from None
    return model


def evaluation(model: nn.Module, model_key: str, profile: Profile, n_eval: int | None, device: str,
               store: cache.Cache, label: str = "") -> dict:
    """Clean and PGD accuracy of a zoo model on the first ``n_eval`` test images, cached."""
    spec = {"model": model_key, "dataset": profile.dataset, "n_eval": n_eval, "eps": profile.eps,
            "steps": profile.pgd_eval_steps}
    key = cache.make_key(spec, [attacks, data])
    if not store.has("evals", key):
        test = data.load_dataset(profile.dataset).test.subset(n_eval, seed=data.TEST_SUBSET_SEED)
        ev = attacks.evaluate(model, test.images, test.labels, profile.eps, profile.pgd_eval_steps,
                              device=device, desc=f"evaluate {label}")
        store.put("evals", key, {}, {"spec": spec, "metrics": ev})
    return store.read_meta("evals", key)["metrics"]


def get_many(profile: Profile, archs, recipes, seeds, device: str = "auto", **params) -> list[ZooEntry]:
    return [get(profile, a, r, s, device=device, **params) for a in archs for r in recipes for s in seeds]


def metrics_table(entries: list[ZooEntry]) -> pd.DataFrame:
    rows = [{"arch": e.spec["arch"], "recipe": e.spec["recipe"], "seed": e.spec["seed"], **e.spec["params"],
             **{k: e.metrics[k] for k in ("clean_acc", "pgd_acc", "train_seconds", "n_eval")}} for e in entries]
    return pd.DataFrame(rows)
