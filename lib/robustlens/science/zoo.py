"""The book's own model zoo: "the model trained with this recipe under this profile", cached.

:func:`get` returns a trained model and its metrics, training it (with progress bars) only when
the cache holds no entry for the same specification, library code and package versions.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from robustlens.science import (
    adaptive_attacks,
    attacks,
    awnet,
    awnet_training,
    cache,
    data,
    evaluation,
    evidence,
    gradient_penalty,
    models,
    progress_log,
    router_apgd,
    seeding,
    training,
    training_progress,
)
from robustlens.science.profiles import Profile

N_CLASSES = 10  # both data sets
MONITORED = ("fast", "awnet")  # recipes whose PGD accuracy is logged after every epoch
MONITOR_IMAGES = 256
# Attacks on a router-gated network, and transfer from another model (adaptive_attacks).
ADAPTIVE = (*adaptive_attacks.ROUTER_ATTACKS, "transfer", "router_apgd")
AUTOATTACK = ("autoattack_core", "autoattack_standard")
#: Square's budget on its own (:func:`black_box_check`): AutoAttack standard's, the black-box
#: reference a white-box evaluation must beat.
SQUARE_QUERIES = 5000
_log = logging.getLogger(__name__)

# The modules whose code decides what a trained model is. Their syntax trees are hashed
# (cache.code_fingerprint), so editing a comment or docstring keeps every key while a change to
# what runs (a step-size rule, the optimiser, the initialisation) retrains. zoo.py and
# profiles.py are left out on purpose: the spec itself holds every value they produce, derived
# ones included (training.recipe_settings), so adding a profile does not retrain the zoo.
_CODE = [attacks, data, models, seeding, training]
# Extra modules per recipe, so that editing the penalty retrains only the models that use it.
_RECIPE_CODE = {"gradpen": [gradient_penalty], "awnet": [awnet, awnet_training]}
# The profile values that shape every training run (the recipe's own come from recipe_settings).
_TRAIN_FIELDS = ("dataset", "train_size", "epochs", "batch_size", "lr", "weight_decay", "augment")


@dataclass
class ZooEntry:
    """A trained zoo model with its metrics, its specification and its cache key."""

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
        raise ValueError(
            f"device={device!r} but no CUDA GPU is visible: use device='cpu' or 'auto'"
        )
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")
    return device


def make_spec(profile: Profile, arch: str, recipe: str, seed: int, **params) -> dict:
    """Everything that decides the weights of a zoo model; the model's cache key hashes it."""
    if arch not in models.DESCRIPTIONS:
        raise ValueError(
            f"unknown architecture {arch!r}: choose one of {', '.join(models.DESCRIPTIONS)}"
        )
    if recipe == "awnet":  # the twin of ``arch``, distilled from zoo teachers of the same seed
        settings = awnet_training.settings(profile, **params)
    else:
        settings = training.recipe_settings(recipe, profile, **params)
    train_cfg = {k: getattr(profile, k) for k in _TRAIN_FIELDS}
    if recipe == "awnet" and profile.awnet_epochs is not None:
        train_cfg["epochs"] = profile.awnet_epochs
    suffix = "".join(f" {k}={v}" for k, v in sorted(params.items()))
    spec = {
        "arch": arch,
        "recipe": recipe,
        "seed": int(seed),
        "params": dict(sorted(params.items())),
        "train": train_cfg,
        "recipe_settings": settings,
        "label": f"{arch}/{recipe}{suffix}/seed{seed}",
    }
    if recipe == "awnet":  # a teacher's key changes when the teacher would be retrained
        spec["teachers"] = {
            role: model_key(make_spec(profile, arch, r, seed))
            for role, r in (("standard", "standard"), ("robust", settings["teacher"]))
        }
    if recipe in MONITORED:  # the per-epoch PGD log is stored with the model: its settings too
        spec["monitor"] = {
            "images": MONITOR_IMAGES,
            "steps": profile.pgd_eval_steps,
            "eps": profile.eps,
        }
    return spec


def model_key(spec: dict) -> str:
    return cache.make_key(spec, _CODE + _RECIPE_CODE.get(spec["recipe"], []))


def get(
    profile: Profile,
    arch: str,
    recipe: str,
    seed: int = 0,
    device: str = "auto",
    store: cache.Cache | None = None,
    eval_size: int | None | str = "profile",
    **params,
) -> ZooEntry:
    """The model ``arch`` trained by ``recipe`` with ``seed`` under ``profile``, with its metrics.

    The model comes from the cache or is trained now; its clean and PGD accuracy on ``eval_size``
    test images (default: the profile's ``test_size``; None: the full test set) likewise.
    Initial weights, data order and attack random starts are all derived from ``seed``
    (:mod:`robustlens.science.seeding`), so the same spec gives the same weights in any process.
    """
    device = resolve_device(device)
    store = store or cache.Cache()
    spec = make_spec(profile, arch, recipe, seed, **params)
    key = model_key(spec)
    # The key in brackets lets the runner list every model a notebook used (its provenance).
    if store.has("models", key):
        progress_log.note(f"{progress_log.FROM_CACHE}: model {spec['label']} [{key}]")
    else:
        progress_log.note(f"{progress_log.COMPUTED}: train {spec['label']} [{key}]")
        train = data.training_split(profile)
        model = build(spec, train.images.shape[1], seed=seed)
        if recipe == "awnet":
            recipe_fn = _awnet_recipe(spec, profile, device, store)
        else:
            recipe_fn = training.recipe_from_settings(recipe, spec["recipe_settings"])
        log = training.train(
            model,
            train.images,
            train.labels,
            recipe_fn,
            epochs=spec["train"]["epochs"],
            batch_size=profile.batch_size,
            lr=profile.lr,
            weight_decay=profile.weight_decay,
            seed=seed,
            augment=profile.augment,
            device=device,
            desc=f"train {spec['label']}",
            monitor=_monitor(recipe, profile),
        )
        if isinstance(recipe_fn, awnet_training.Recipe):
            log["steps"] = recipe_fn.steps  # per-step losses, weights, type accuracy
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        store.put(
            "models",
            key,
            {"model.pt": lambda p: torch.save(state, p)},
            {
                "spec": spec,
                "train_log": log,
                "device": device,
                "n_parameters": models.count_parameters(model),
            },
        )
    meta = store.read_meta("models", key)
    model = _load_model(store, key, meta["spec"], profile).to(device).eval()
    n_eval = profile.test_size if eval_size == "profile" else eval_size
    metrics = {
        **meta["train_log"],
        **accuracy(model, key, profile, n_eval, device, store, spec["label"]),
    }
    return ZooEntry(model, metrics, meta["spec"], key)


def _monitor(recipe: str, profile: Profile) -> training.Monitor | None:
    """Fast AT gets its PGD accuracy logged per epoch (catastrophic overfitting shows there), on
    the first test images: never on training images, whose accuracy hides overfitting. AW-Net's
    log adds its type head's accuracy on those images and their PGD examples."""
    if recipe not in MONITORED:
        return None
    test = data.evaluation_split(profile.dataset, MONITOR_IMAGES)
    monitor = awnet_training.monitor if recipe == "awnet" else training.pgd_monitor
    return monitor(test.images, test.labels, profile.eps, profile.pgd_eval_steps)


def build(spec: dict, in_channels: int, seed: int | None = None) -> nn.Module:
    """The untrained network of ``spec``: a zoo architecture, or its AW-Net twin."""
    if spec["recipe"] == "awnet":
        net = spec["recipe_settings"]["net"]
        return awnet.build_awnet(spec["arch"], in_channels, N_CLASSES, seed=seed, **net)
    return models.build_model(spec["arch"], in_channels, N_CLASSES, seed=seed)


def _awnet_recipe(spec: dict, profile: Profile, device: str, store: cache.Cache):
    """AW-Net's loss with its two teachers: zoo models of the same architecture and seed."""
    s = spec["recipe_settings"]
    teachers = (None, None)
    if s["loss"] == "distill":
        teachers = tuple(
            get(profile, spec["arch"], r, spec["seed"], device, store, profile.zoo_test_size).model
            for r in ("standard", s["teacher"])
        )
    return awnet_training.Recipe(s, *teachers)


def initial_model(entry: ZooEntry) -> nn.Module:
    """The untrained model ``entry`` started from (rebuilt from its spec: a model is its spec)."""
    shape = data.IMAGE_SHAPES[entry.spec["train"]["dataset"]]
    return build(entry.spec, shape[0], seed=entry.spec["seed"]).eval()


def _load_model(store: cache.Cache, key: str, spec: dict, profile: Profile) -> nn.Module:
    model = build(spec, data.IMAGE_SHAPES[profile.dataset][0])
    try:
        state = torch.load(
            store.path("models", key, "model.pt"), map_location="cpu", weights_only=True
        )
        model.load_state_dict(state)
    except cache.CacheError:
        raise
    except Exception as exc:
        folder = store.entry_dir("models", key)
        raise cache.CacheError(
            f"cached checkpoint in {folder} does not load ({type(exc).__name__}): "
            "delete that folder and rerun"
        ) from None
    return model


def attack_settings(profile: Profile, attack: str, **overrides) -> dict:
    """Every value that decides an evaluation attack's result at ``profile``, derived ones included.

    The adaptive attacks on a router (:mod:`robustlens.science.adaptive_attacks`) run twice the
    profile's PGD steps; ``overrides`` set their own parameters (e.g. ``kappa``).
    """
    eps = profile.eps
    if overrides and attack not in ADAPTIVE:
        raise ValueError(f"attack {attack!r} takes no overrides here: drop {sorted(overrides)}")
    if attack == "clean":
        return {}
    if attack == "pgd":  # one random start, alpha = 2.5 eps / steps (Madry et al.'s rule of thumb)
        steps = profile.pgd_eval_steps
        return {"eps": eps, "steps": steps, "alpha": 2.5 * eps / steps, "restarts": 1}
    if attack in ("autoattack_core", "autoattack_standard"):
        return {
            "eps": eps,
            "version": attack.split("_")[1],
            "autoattack": evaluation.autoattack_version(),
        }
    if attack == "square":
        return {"eps": eps, "n_queries": SQUARE_QUERIES}
    if attack == "router_apgd":  # APGD keeps its own step-size schedule: no alpha
        out = {
            "eps": eps,
            "steps": int(overrides.get("steps", 100)),
            "restarts": int(overrides.get("restarts", 1)),
            "loss": str(overrides.get("loss", "margin")),
            "kappa": float(overrides.get("kappa", 1.0)),
            "targeted": bool(overrides.get("targeted", False)),
            "n_targets": int(overrides.get("n_targets", 3)),
        }
        unknown = set(overrides) - set(out)
        if unknown:
            raise ValueError(f"attack 'router_apgd' takes no setting(s) {sorted(unknown)}")
        return out
    if attack in ADAPTIVE:
        steps = int(overrides.get("steps", 2 * profile.pgd_eval_steps))
        out = {"eps": eps, "steps": steps, "alpha": 2.5 * eps / steps, "restarts": 1}
        if attack == "router_evasion":
            out["kappa"] = float(overrides.get("kappa", 1.0))
        unknown = set(overrides) - set(out)
        if unknown:
            raise ValueError(f"attack {attack!r} takes no setting(s) {sorted(unknown)}")
        return {**out, **{k: v for k, v in overrides.items() if k in ("restarts",)}}
    raise ValueError(
        f"unknown evaluation attack {attack!r}: choose clean, pgd, autoattack_core, "
        f"autoattack_standard, square or one of {', '.join(ADAPTIVE)}"
    )


def correct(
    model: nn.Module,
    model_key: str,
    profile: Profile,
    attack: str,
    n_eval: int | None,
    device: str,
    store: cache.Cache | None = None,
    label: str = "",
    source: ZooEntry | None = None,
    **overrides,
) -> np.ndarray:
    """Per test image, whether ``model`` still classifies it correctly under ``attack`` (cached).

    The images are the first ``n_eval`` of the test set's fixed permutation, so the results of two
    attacks (or two sizes) line up image by image on their common prefix: the per-image worst
    case over attacks is then a plain ``&``. The attack's random starts come from a seed derived
    from the attack's name (:mod:`robustlens.science.seeding`), recorded in the entry's spec.
    """
    store = store or cache.Cache()
    spec, key = _eval_spec(model_key, profile, attack, n_eval, source, **overrides)
    settings = spec["settings"]
    if store.has("evals", key):
        progress_log.note(f"{progress_log.FROM_CACHE}: {attack} on {label}")
    else:
        progress_log.note(
            f"{progress_log.COMPUTED}: {attack} on {label} ({n_eval or 'all'} images)"
        )
        test = data.evaluation_split(profile.dataset, n_eval)
        with _flags_caught() as flags:
            ok = evaluation.run_attack(
                model,
                test.images,
                test.labels,
                attack,
                seed=spec["seed"],
                device=device,
                batch_size=spec["batch_size"],
                desc=_bar_label(f"{attack} {label}"),
                **{k: v for k, v in settings.items() if k != "autoattack"},
                **({"source": source.model} if source is not None else {}),
            )
        _say_flags(flags, label)
        ok = ok.cpu().numpy().astype(bool)
        meta = {"spec": spec, "accuracy": float(ok.mean()), "n": int(ok.size)}
        if attack in AUTOATTACK:
            meta["flags"] = flags
        store.put("evals", key, {"correct.npy": lambda p: np.save(p, ok)}, meta)
    return np.load(store.path("evals", key, "correct.npy"))


def _eval_spec(
    model_key: str,
    profile: Profile,
    attack: str,
    n_eval: int | None,
    source: ZooEntry | None = None,
    **overrides,
) -> tuple[dict, str]:
    """The specification and cache key of one evaluation of :func:`correct`."""
    settings = attack_settings(profile, attack, **overrides)
    if (attack == "transfer") != (source is not None):
        raise ValueError(
            "pass source=<zoo entry to craft on> with attack 'transfer', and only then"
        )
    # Random starts are drawn per batch, so the batch size is part of what decides the result.
    spec = {
        "model": model_key,
        "dataset": profile.dataset,
        "n_eval": n_eval,
        "subset_seed": data.TEST_SUBSET_SEED,
        "attack": attack,
        "settings": settings,
        "seed": seeding.derive(0, "evaluation", attack),
        "batch_size": evaluation.DEFAULT_BATCH_SIZE,
    }
    if attack in AUTOATTACK:  # entries made before AutoAttack's flags were kept have no flags
        spec["keeps_flags"] = True
    code = [attacks, data, evaluation, seeding]
    if attack in ADAPTIVE:  # only these keys change when the adaptive attacks' code does
        code.append(adaptive_attacks)
    if attack == "router_apgd":
        code.append(router_apgd)
    if source is not None:
        spec["source"] = source.key
    return spec, cache.make_key(spec, code)


def autoattack_flags(
    entry: ZooEntry,
    profile: Profile,
    attack: str,
    n_eval: int | None,
    store: cache.Cache | None = None,
) -> list[str]:
    """AutoAttack's own reliability flags for ``entry``'s cached evaluation by ``attack`` (e.g.
    "Square Attack has decreased the robust accuracy": a black-box attack found what the
    gradient-based ones missed, a sign of masked gradients). Empty when it raised none; run
    :func:`correct` (or :func:`robustness`) first."""
    if attack not in AUTOATTACK:
        raise ValueError(f"attack {attack!r} has no flags: choose one of {', '.join(AUTOATTACK)}")
    store = store or cache.Cache()
    _, key = _eval_spec(entry.key, profile, attack, n_eval)
    if not store.has("evals", key):
        raise ValueError(
            f"no cached {attack} evaluation of {entry.label} on {n_eval or 'all'} images: "
            "run zoo.correct or zoo.robustness first"
        )
    return list(store.read_meta("evals", key)["flags"])


class _FlagCatcher(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _flags_caught():
    """Catch the flags the evaluation suite logs (AutoAttack's) instead of letting them print
    into a notebook's output, where they would show only on the run that computed them."""
    catcher, logger = _FlagCatcher(), evaluation.log
    saved = logger.propagate
    logger.addHandler(catcher)
    logger.propagate = False
    try:
        yield catcher.messages
    finally:
        logger.removeHandler(catcher)
        logger.propagate = saved


def _say_flags(flags: list[str], label: str) -> None:
    """Show each flag to whoever watches: the runner's terminal, else the log."""
    for msg in flags:
        if os.environ.get(progress_log.ENV):
            progress_log.note(f"flag on {label}: {msg}")
        else:
            _log.warning("%s: %s", label, msg)


def _bar_label(label: str) -> str | None:
    """A progress bar's label, or None (no bar) where TQDM_DISABLE asks for none and no runner
    follows the progress file (:mod:`robustlens.science.progress_log`): the evaluation suite shows
    a bar exactly when it gets a label."""
    if os.environ.get(progress_log.ENV):
        return label
    return None if os.environ.get("TQDM_DISABLE") not in (None, "", "0") else label


def accuracy(
    model: nn.Module,
    model_key: str,
    profile: Profile,
    n_eval: int | None,
    device: str,
    store: cache.Cache | None = None,
    label: str = "",
) -> dict:
    """Clean and PGD accuracy of a zoo model on the first ``n_eval`` test images, with 95 % intervals."""
    out = {"eval_eps": profile.eps, "eval_steps": profile.pgd_eval_steps}
    for attack, name in (("clean", "clean"), ("pgd", "pgd")):
        ok = correct(model, model_key, profile, attack, n_eval, device, store, label)
        out[f"{name}_acc"] = float(ok.mean())
        out[f"{name}_ci"] = list(evidence.wilson_interval(int(ok.sum()), ok.size))
        out["n_eval"] = int(ok.size)
    return out


def robustness(
    entry: ZooEntry,
    profile: Profile,
    attack_names: Sequence[str],
    n_eval: int | None,
    device: str = "auto",
    store: cache.Cache | None = None,
) -> pd.DataFrame:
    """Per test image: clean, each attack, and the worst case over them (all on the same images)."""
    device = resolve_device(device)
    cols = {
        a: correct(entry.model, entry.key, profile, a, n_eval, device, store, entry.label)
        for a in ("clean", *attack_names)
    }
    table = pd.DataFrame(cols)
    table["worst_case"] = table.all(axis=1)
    return table


def sanity(
    entry: ZooEntry, profile: Profile, device: str = "auto", store: cache.Cache | None = None
) -> pd.DataFrame:
    """The gradient-masking sanity checks of Carlini et al. 2019 for ``entry`` (cached).

    :func:`robustlens.science.evaluation.sanity_checks` on the first ``profile.sanity_n_eval`` test images
    at the profile's eps: accuracy falls to ~0 as eps grows, more PGD steps and restarts never help
    the defender, black-box Square is not stronger than the white-box attacks.
    """
    device = resolve_device(device)
    store = store or cache.Cache()
    settings = {
        "eps": profile.eps,
        "square_queries": profile.sanity_square_queries,
        "eps_max": 0.5,
        "sweep_steps": 50,
        "few_steps": 10,
        "many_steps": 100,
        "restarts": 5,
        "batch_size": evaluation.DEFAULT_BATCH_SIZE,
    }
    spec = {
        "model": entry.key,
        "dataset": profile.dataset,
        "n_eval": profile.sanity_n_eval,
        "subset_seed": data.TEST_SUBSET_SEED,
        "check": "sanity",
        "settings": settings,
        "seed": seeding.derive(0, "sanity"),
        "autoattack": evaluation.autoattack_version(),
    }
    key = cache.make_key(spec, [attacks, data, evaluation, seeding])
    if not store.has("evals", key):
        test = data.evaluation_split(profile.dataset, profile.sanity_n_eval)
        table = evaluation.sanity_checks(
            entry.model,
            test.images,
            test.labels,
            settings["eps"],
            seed=spec["seed"],
            device=device,
            **{k: v for k, v in settings.items() if k != "eps"},
        )
        store.put(
            "evals", key, {"sanity.csv": lambda p: table.to_csv(p, index=False)}, {"spec": spec}
        )
    return pd.read_csv(store.path("evals", key, "sanity.csv"))


def black_box_check(
    entry: ZooEntry,
    profile: Profile,
    white: pd.DataFrame,
    device: str = "auto",
    store: cache.Cache | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Carlini et al. (2019)'s "black-box is not stronger than white-box", with *every* white-box
    attack given: ``white`` holds one per-image column per attack (the first ``len(white)`` test
    images, as :func:`correct` returns them). :func:`sanity`'s version compares Square with PGD
    runs only; on a defence that a plain gradient can be misled by (a router), the question is
    whether Square beats the adaptive attacks too. Square runs with :data:`SQUARE_QUERIES`
    queries (cached); the verdict is the one-sided paired exact test of
    :func:`robustlens.science.evaluation.paired_exact_p`. Rows in :func:`sanity`'s format, check
    ``black_vs_adaptive``, so the two tables concatenate."""
    if white.empty or not all(white[c].dtype == bool for c in white.columns):
        raise ValueError("white: give one boolean per-image column per white-box attack")
    device = resolve_device(device)
    square = correct(
        entry.model, entry.key, profile, "square", len(white), device, store, entry.label
    )
    worst_white = white.all(axis=1).to_numpy()
    survive_white_only = int((worst_white & ~square).sum())
    survive_square_only = int((~worst_white & square).sum())
    p = evaluation.paired_exact_p(survive_white_only, survive_square_only)
    detail = (
        f"{survive_white_only} images survive every white-box attack but not Square, "
        f"{survive_square_only} the reverse: one-sided exact p = {p:.3g}"
    )
    return pd.DataFrame(
        {
            "check": "black_vs_adaptive",
            "setting": [f"Square {SQUARE_QUERIES} queries", "the white-box worst case"],
            "accuracy": [float(square.mean()), float(worst_white.mean())],
            "n": len(white),
            "expected": "acc(Square) >= acc(every white-box attack) up to noise",
            "passed": not p < alpha,
            "detail": detail,
        }
    )


def get_many(
    profile: Profile,
    archs,
    recipes,
    seeds,
    device: str = "auto",
    eval_size: int | None | str = "profile",
    **params,
) -> list[ZooEntry]:
    """:func:`get` for every architecture × recipe × seed, in that order."""
    jobs = [(a, r, s) for a in archs for r in recipes for s in seeds]
    entries = []
    store = cache.Cache()
    for i, (a, r, s) in enumerate(jobs, 1):
        if not store.has("models", model_key(make_spec(profile, a, r, s, **params))):
            progress_log.note(f"zoo model {i} of {len(jobs)} is not in the cache yet")
        entries.append(get(profile, a, r, s, device=device, eval_size=eval_size, **params))
    return entries


def static_family(
    profile: Profile, arch: str, seed: int, device: str = "auto", eval_size="profile"
) -> list[ZooEntry]:
    """The static models of chapter 04's trade-off, one architecture and seed: standard, PGD-AT
    at the profile's eps and at each budget of its sweep, and the input-gradient penalty at each
    lambda of both norms (the same specs wherever they are asked for, so one cache entry each)."""

    def one(recipe, prof=profile, **params):
        return get(prof, arch, recipe, seed, device=device, eval_size=eval_size, **params)

    at_sweep = [
        one("pgd", dataclasses.replace(profile, eps=e)) for e in sorted(profile.at_eps_sweep)
    ]
    return [
        one("standard"),
        one("pgd"),
        *at_sweep,
        *(one("gradpen", lam=lam, norm="l1") for lam in sorted(profile.gradpen_l1_lams)),
        *(one("gradpen", lam=lam, norm="l2sq") for lam in sorted(profile.gradpen_l2sq_lams)),
    ]


def metrics_table(entries: list[ZooEntry]) -> pd.DataFrame:
    rows = [
        {
            "arch": e.spec["arch"],
            "recipe": e.spec["recipe"],
            "seed": e.spec["seed"],
            **e.spec["params"],
            **{k: e.metrics[k] for k in ("clean_acc", "pgd_acc", "train_seconds", "n_eval")},
        }
        for e in entries
    ]
    return pd.DataFrame(rows)


def progress(entry: ZooEntry) -> dict:
    """How far training moved ``entry``'s conv weights from its own initialisation (see
    :mod:`robustlens.science.training_progress`); the initial model is rebuilt from the spec."""
    trained = copy.deepcopy(entry.model).cpu()
    return training_progress.summary(trained, initial_model(entry), entry.input_shape)
