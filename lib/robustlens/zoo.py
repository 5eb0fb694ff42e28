"""The book's own model zoo: "the model trained with this recipe under this profile", cached.

:func:`get` returns a trained model and its metrics, training it (with progress bars) only when
the cache holds no entry for the same specification, library code and package versions.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from . import attacks, cache, data, models, profiles, training
from .profiles import Profile

# The modules whose source decides what a trained model is; editing one retrains.
_CODE = [attacks, data, models, profiles, training, sys.modules[__name__]]
# Profile fields that do not change how a single model is trained or evaluated.
_NOT_IN_SPEC = {"name", "arch", "architectures", "seeds", "extra"}


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
        store: cache.Cache | None = None, **params) -> ZooEntry:
    """The model ``arch`` trained by ``recipe`` with ``seed`` under ``profile``: from the cache, or trained now."""
    device = resolve_device(device)
    store = store or cache.Cache()
    spec = make_spec(profile, arch, recipe, seed, **params)
    key = cache.make_key(spec, _CODE)
    ds = None
    if not store.has("models", key):
        ds = data.load_for_profile(profile)
        model = models.build_model(arch, ds.shape[0], len(ds.classes))
        recipe_fn = training.make_recipe(recipe, profile, **params)
        log = training.train(model, ds.train.images, ds.train.labels, recipe_fn, epochs=profile.epochs,
                             batch_size=profile.batch_size, lr=profile.lr, weight_decay=profile.weight_decay,
                             seed=seed, augment=profile.augment, device=device, desc=f"train {spec['label']}")
        ev = attacks.evaluate(model, ds.test.images, ds.test.labels, profile.eps, profile.pgd_eval_steps,
                              device=device, desc=f"evaluate {spec['label']}")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        store.put("models", key, {"model.pt": lambda p: torch.save(state, p)},
                  {"spec": spec, "metrics": {**log, **ev}, "device": device,
                   "n_parameters": models.count_parameters(model)})
    meta = store.read_meta("models", key)
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
    model.to(device).eval()
    return ZooEntry(model, meta["metrics"], meta["spec"], key)


def get_many(profile: Profile, archs, recipes, seeds, device: str = "auto", **params) -> list[ZooEntry]:
    return [get(profile, a, r, s, device=device, **params) for a in archs for r in recipes for s in seeds]


def metrics_table(entries: list[ZooEntry]) -> pd.DataFrame:
    rows = [{"arch": e.spec["arch"], "recipe": e.spec["recipe"], "seed": e.spec["seed"], **e.spec["params"],
             **{k: e.metrics[k] for k in ("clean_acc", "pgd_acc", "train_seconds", "n_eval")}} for e in entries]
    return pd.DataFrame(rows)
