"""Robust accuracy as a per-image worst case over strong attacks, and the sanity checks behind it.

Why per-image boolean vectors
    Every attack here answers one question per test image: *is it still classified correctly?*
    (a ``torch.bool`` tensor, True = still correct). Vectors over the same images combine with a
    plain ``&``: the robust accuracy the book reports is the mean of the per-image worst case
    ``clean & attack_1 & attack_2 & ...`` (an image counts as robust only if no attack breaks it,
    and an image misclassified without any attack counts as broken, as in AutoAttack). Later
    chapters add their own (e.g. adaptive) attacks as extra columns: :func:`register_attack` or
    :func:`add_attack_column`.

Why these attacks
    PGD alone (Madry et al. 2018) with few steps overestimates robustness, most of all for models
    that mask gradients. The suite therefore offers AutoAttack (Croce & Hein 2020, "Reliable
    evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks"):

    * ``autoattack_standard``: AutoAttack's ``version="standard"`` (APGD-CE, APGD-T, FAB-T,
      Square with 5000 queries), the RobustBench evaluation;
    * ``autoattack_core``: what this book calls *the AutoAttack core*: AutoAttack's own
      ``version="custom"`` with ``attacks=['apgd-ce', 'apgd-t']``, i.e. the two gradient-based
      APGD attacks with the settings AutoAttack's constructor gives them (APGD-CE: 100 iterations,
      5 random restarts; APGD-T: 100 iterations, 1 restart, 9 target classes). Note that its
      APGD-CE has more restarts than the standard version's (1), so "core" is not a prefix of
      "standard"; it is cheaper because it skips FAB-T and Square.
    * ``square``: the black-box Square Attack (Andriushchenko et al. 2020) on its own. It uses
      no gradients, so it is the reference against gradient masking: a black-box attack must
      never beat the white-box ones.

Why the sanity checks
    Carlini et al. 2019 ("On Evaluating Adversarial Robustness") list symptoms of an evaluation
    that is broken rather than a model that is robust. :func:`sanity_checks` tests four of them,
    each as a *paired* comparison on the same images (see :func:`paired_exact_p`): accuracy
    must fall to about 0 as the budget grows; more PGD steps, more restarts and white-box instead
    of black-box access must never help the defender.

Why everything takes a seed and a device
    An attack's random starts are drawn from its ``seed`` argument, never from whatever state the
    global RNG happens to be in: torchattacks' PGD runs inside ``torch.random.fork_rng`` after
    seeding (so the caller's global RNG is untouched afterwards), with a seed derived from
    (``seed``, restart, batch) by :func:`robustlens.science.seeding.derive`; AutoAttack and Square get
    ``seed=`` and ``device=`` explicitly (AutoAttack's own default seed is the clock). The same
    seed, images and ``batch_size`` give the same per-image results. Results may depend on
    ``batch_size`` (random starts are drawn per batch).

Every function puts the model in eval mode while it runs and restores each submodule's
train/eval flag afterwards. Inputs are images in [0, 1] (N, C, H, W) with integer labels; bad
arguments raise ``ValueError`` before any attack runs.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torchattacks
from torch import nn

from robustlens.science import progress_log, seeding
from robustlens.science.evidence import Z95, wilson_interval  # noqa: F401  (re-exported: the suite quotes intervals)
from robustlens.science.model_modes import eval_mode

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 256
_AA_LOGGER = "auto-attack"  # the logger pyautoattack writes its progress and warnings to
_META_COLUMNS = ("index", "label")


# ----------------------------------------------------------------------------------------------
# Statistics


def paired_exact_p(b: int, c: int) -> float:
    """One-sided exact McNemar (sign) test on the discordant pairs of a paired comparison.

    Two evaluations A ("should be at least as strong") and B of the same images: ``b`` images
    survive A but are broken by B, ``c`` the reverse. If A is really at least as strong, b should
    not exceed c beyond chance; under the null of symmetry b ~ Binomial(b + c, 1/2). Returns
    P(X >= b), the evidence that A is *weaker* than B. Concordant images carry no information
    about the difference, which is why the test ignores them.
    """
    b, c = int(b), int(c)
    m = b + c
    if m == 0:
        return 1.0
    return sum(math.comb(m, i) for i in range(b, m + 1)) / 2**m


# ----------------------------------------------------------------------------------------------
# Validation and shared plumbing


def _check_eps(eps: float, name: str = "eps", allow_one: bool = False) -> None:
    ok = (
        isinstance(eps, (int, float))
        and not isinstance(eps, bool)
        and (0.0 < eps <= 1.0 if allow_one else 0.0 < eps < 1.0)
    )
    if not ok:
        rng = "0 < {0} <= 1" if allow_one else "0 < {0} < 1"
        raise ValueError(
            f"{name}={eps!r} is impossible for inputs in [0, 1]: use {rng.format(name)}"
        )


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer: pass e.g. {name}=1")


def _resolve_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device: use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is visible: use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported: use 'cpu' or 'cuda'")
    return dev


def _check_inputs(model: nn.Module, x, y, device, batch_size, seed=0) -> torch.device:
    """Cheap checks of everything an attack needs, so that mistakes fail before any compute."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"seed={seed!r}: pass a non-negative integer (random starts are drawn from it)"
        )
    if not isinstance(model, nn.Module):
        raise ValueError(f"model is a {type(model).__name__}: pass a torch.nn.Module")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError("x and y must be torch tensors: convert with torch.as_tensor")
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(
            f"x has shape {tuple(x.shape)} and dtype {x.dtype}: pass float images (N, C, H, W)"
        )
    if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(
            f"y has shape {tuple(y.shape)} and dtype {y.dtype}: pass integer labels (N,)"
        )
    if len(x) != len(y):
        raise ValueError(
            f"x has {len(x)} images but y has {len(y)} labels: pass one label per image"
        )
    if len(x) == 0:
        raise ValueError("x holds no images: pass at least one")
    if float(x.min()) < 0.0 or float(x.max()) > 1.0:
        raise ValueError(
            f"x spans [{float(x.min()):.3g}, {float(x.max()):.3g}]: pass images in [0, 1] "
            "(undo any normalisation; put it inside the model)"
        )
    _check_positive_int(batch_size, "batch_size")
    dev = _resolve_device(device)
    param = next(iter(model.parameters()), None)
    if param is not None and param.device.type != dev.type:
        raise ValueError(
            f"the model is on {param.device} but device={str(dev)!r}: "
            f"call model.to({str(dev)!r}) first or pass device={str(param.device)!r}"
        )
    return dev


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    if verbose:
        yield
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            yield


def _batches(x, y, batch_size: int, device: torch.device, desc: str | None):
    starts = range(0, len(y), batch_size)
    for b, i in enumerate(progress_log.bar(starts, desc=desc, leave=False, disable=desc is None)):
        yield b, x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


# ----------------------------------------------------------------------------------------------
# Per-image attacks


def clean_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether ``model`` classifies the unperturbed image correctly (bool, on CPU)."""
    dev = _check_inputs(model, x, y, device, batch_size)
    out = []
    with eval_mode(model):
        for _, xb, yb in _batches(x, y, batch_size, dev, desc):
            out.append((_predict(model, xb) == yb).cpu())
    return torch.cat(out)


def _pgd(model, x, y, eps, steps, alpha, restarts, seed, dev, batch_size, desc) -> torch.Tensor:
    """PGD without argument checks (the sanity checks use budgets up to 1)."""
    out = []
    with _quiet(False):  # torchattacks prints if the model has no parameters to take a device from
        attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    attack.set_device(dev)
    with eval_mode(model):
        for b, xb, yb in _batches(x, y, batch_size, dev, desc):
            alive = _predict(model, xb) == yb
            for r in range(restarts):
                idx = alive.nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                # Seeded per (restart, batch) and attacking only the survivors: restart 0 is the
                # same in a 1-restart and an R-restart run, so extra restarts can only add breaks.
                with seeding.seeded(seed, "pgd", r, b, device=dev):
                    adv = attack(xb[idx], yb[idx])
                alive[idx] = _predict(model, adv) == yb[idx]
            out.append(alive.cpu())
    return torch.cat(out)


def pgd_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    alpha: float | None = None,
    restarts: int = 1,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether it survives L-inf PGD on the cross-entropy (Madry et al. 2018).

    Each restart starts uniformly at random in the eps-ball (torchattacks.PGD); ``alpha``
    defaults to 2.5 eps / steps. An image counts as broken if it is misclassified clean or if ANY
    restart breaks it (later restarts attack only the survivors).
    """
    dev = _check_inputs(model, x, y, device, batch_size, seed)
    _check_eps(eps)
    _check_positive_int(steps, "steps")
    _check_positive_int(restarts, "restarts")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(
            f"alpha={alpha!r} must be a positive step size: omit it for 2.5 * eps / steps"
        )
    return _pgd(
        model,
        x,
        y,
        float(eps),
        int(steps),
        float(alpha),
        int(restarts),
        seed,
        dev,
        batch_size,
        desc,
    )


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        msg = record.getMessage()
        if msg not in self.messages:
            self.messages.append(msg)


@contextlib.contextmanager
def _autoattack_logging(verbose: bool) -> Iterator[list[str]]:
    """Collect AutoAttack's warnings; show its progress messages only if ``verbose``.

    AutoAttack's flag checks call ``sys.settrace(None)``, which would switch off a debugger or
    coverage tracer; the caller's trace function is put back afterwards.
    """
    logger = logging.getLogger(_AA_LOGGER)
    saved = (logger.level, logger.propagate, sys.gettrace())
    catcher = _ListHandler()
    logger.addHandler(catcher)
    shower = None
    if verbose:
        shower = logging.StreamHandler(sys.stdout)
        shower.setFormatter(logging.Formatter("[autoattack] %(message)s"))
        logger.addHandler(shower)
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        with _quiet(verbose):
            yield catcher.messages
    finally:
        logger.removeHandler(catcher)
        if shower is not None:
            logger.removeHandler(shower)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        if sys.gettrace() is not saved[2]:
            sys.settrace(saved[2])


def autoattack_version() -> str:
    """The AutoAttack implementation in use (recorded in cache keys of AutoAttack results)."""
    import pyautoattack

    return f"pyautoattack {pyautoattack.__version__}"


def _n_classes(model: nn.Module, x: torch.Tensor, dev: torch.device) -> int:
    with eval_mode(model):
        return int(model(x[:1].to(dev)).shape[-1])


def autoattack_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    version: str = "standard",
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    verbose: bool = False,
    return_warnings: bool = False,
    desc: str | None = None,
):
    """Per image, whether it survives AutoAttack (Croce & Hein 2020) at L-inf budget ``eps``.

    ``version="standard"``: APGD-CE, APGD-T, FAB-T, Square (5000 queries);
    ``version="core"`` (*the AutoAttack core* in the book): AutoAttack's ``version="custom"``
    with ``attacks=['apgd-ce', 'apgd-t']`` (APGD-CE with 5 restarts, APGD-T with 9 targets).
    With fewer than 10 classes the targeted attacks use every other class (n_classes - 1).

    AutoAttack's progress messages are shown only with ``verbose=True``. Its warnings (possible
    randomness, zero gradients, Square beating the gradient attacks: signs of gradient masking)
    are always re-logged on this module's logger, and returned as a list of strings beside the
    result when ``return_warnings=True``. ``desc`` is accepted for a uniform API (no bar).
    """
    dev = _check_inputs(model, x, y, device, batch_size, seed)
    _check_eps(eps)
    if version not in ("standard", "core"):
        raise ValueError(f"version={version!r}: use 'standard' or 'core'")
    from pyautoattack import AutoAttack

    n_classes = _n_classes(model, x, dev)
    if n_classes < 4:
        raise ValueError(
            f"the model has {n_classes} classes but AutoAttack's targeted DLR loss needs "
            "at least 4: use pgd_correct/square_correct instead"
        )
    with (
        eval_mode(model),
        seeding.seeded(seed, "autoattack", device=dev),
        _autoattack_logging(verbose) as warnings_,
    ):
        if version == "standard":
            aa = AutoAttack(
                model, norm="Linf", eps=float(eps), version="standard", seed=seed, device=dev
            )
        else:
            aa = AutoAttack(
                model,
                norm="Linf",
                eps=float(eps),
                version="custom",
                seed=seed,
                device=dev,
                attacks=["apgd-ce", "apgd-t"],
            )
        aa.apgd_targeted.n_target_classes = min(aa.apgd_targeted.n_target_classes, n_classes - 1)
        aa.fab.n_target_classes = min(aa.fab.n_target_classes, n_classes - 1)
        x_adv, y_adv = aa.run_standard_evaluation(x, y, batch_size=batch_size)
    linf = (x_adv.cpu() - x.cpu()).abs().flatten(1).amax(1)
    if (
        float(linf.max()) > eps + 1e-5
        or float(x_adv.min()) < -1e-6
        or float(x_adv.max()) > 1 + 1e-6
    ):
        raise RuntimeError(
            f"AutoAttack returned points outside the eps-ball or [0, 1] "
            f"(max L-inf {float(linf.max()):.4g} > eps {eps}): report this as a bug"
        )
    for msg in warnings_:
        log.warning("AutoAttack (%s, eps=%g): %s", version, eps, msg)
    correct = y_adv.cpu() == y.cpu()
    return (correct, list(warnings_)) if return_warnings else correct


def square_correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    n_queries: int = 5000,
    *,
    p_init: float = 0.8,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    desc: str | None = None,
) -> torch.Tensor:
    """Per image, whether it survives the black-box L-inf Square Attack (Andriushchenko et al. 2020).

    AutoAttack's implementation (margin loss, one restart, ``p_init`` = 0.8) with its square-size
    schedule rescaled to ``n_queries`` (the paper's schedule is written for 10,000 queries).
    Default 5000 queries, as in AutoAttack's standard version.
    """
    dev = _check_inputs(model, x, y, device, batch_size, seed)
    _check_eps(eps)
    _check_positive_int(n_queries, "n_queries")
    return _square(model, x, y, float(eps), int(n_queries), p_init, seed, dev, batch_size, desc)


def _square(model, x, y, eps, n_queries, p_init, seed, dev, batch_size, desc) -> torch.Tensor:
    from pyautoattack.square import SquareAttack

    out = []
    with eval_mode(model):
        sq = SquareAttack(
            model,
            norm="Linf",
            n_queries=n_queries,
            eps=eps,
            p_init=p_init,
            n_restarts=1,
            seed=seed,
            verbose=False,
            loss="margin",
            resc_schedule=True,
            device=dev,
        )
        for b, xb, yb in _batches(x, y, batch_size, dev, desc):
            alive = _predict(model, xb) == yb
            idx = alive.nonzero().squeeze(1)
            if idx.numel():
                sq.seed = seeding.derive(seed, "square", b)
                with seeding.seeded(sq.seed, "square", device=dev), torch.no_grad():
                    adv = sq.perturb(xb[idx], yb[idx])
                alive[idx] = _predict(model, adv) == yb[idx]
            out.append(alive.cpu())
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class AttackSpec:
    """A named attack: ``fn(model, x, y, eps, *, seed, device, batch_size, desc, **settings)``
    returns the per-image bool "still correct" vector. ``kind`` is "white-box", "black-box" or
    "none" (the clean column); ``fixed`` settings define the name and cannot be overridden."""

    name: str
    fn: Callable[..., torch.Tensor]
    kind: str
    description: str
    defaults: dict = field(default_factory=dict)
    fixed: tuple[str, ...] = ()

    def allowed_settings(self) -> set[str]:
        params = inspect.signature(self.fn).parameters
        skip = {"model", "x", "y", "eps", "seed", "device", "batch_size", "desc"}
        return {p for p in params if p not in skip} - set(self.fixed)


#: The attack registry: name to :class:`AttackSpec`, filled by :func:`register_attack`.
#:
#: :meta hide-value:
ATTACKS: dict[str, AttackSpec] = {}


def register_attack(
    name: str,
    fn: Callable[..., torch.Tensor],
    kind: str,
    description: str = "",
    fixed: Sequence[str] = (),
    **defaults,
) -> AttackSpec:
    """Add (or replace) a named attack, e.g. a chapter's adaptive attack, as a suite column."""
    if kind not in ("white-box", "black-box", "none"):
        raise ValueError(f"kind={kind!r}: use 'white-box', 'black-box' or 'none'")
    if name in _META_COLUMNS + ("worst_case",):
        raise ValueError(f"{name!r} is a reserved column name: pick another attack name")
    spec = AttackSpec(name, fn, kind, description, dict(defaults), tuple(fixed))
    ATTACKS[name] = spec
    return spec


def _clean_adapter(
    model, x, y, eps=None, *, seed=0, device="cpu", batch_size=DEFAULT_BATCH_SIZE, desc=None
):
    return clean_correct(model, x, y, device=device, batch_size=batch_size, desc=desc)


def _autoattack_adapter(
    model,
    x,
    y,
    eps,
    version="standard",
    *,
    seed=0,
    device="cpu",
    batch_size=DEFAULT_BATCH_SIZE,
    desc=None,
    verbose=False,
):
    return autoattack_correct(
        model,
        x,
        y,
        eps,
        version,
        seed=seed,
        device=device,
        batch_size=batch_size,
        verbose=verbose,
        return_warnings=True,
    )


register_attack("clean", _clean_adapter, "none", "no attack")
register_attack("pgd", pgd_correct, "white-box", "PGD on the cross-entropy (give steps)", steps=20)
for _steps in (10, 20, 50, 100):
    register_attack(
        f"pgd{_steps}",
        pgd_correct,
        "white-box",
        f"PGD-{_steps}, alpha = 2.5 eps / {_steps}, random start",
        fixed=("steps",),
        steps=_steps,
    )
register_attack(
    "autoattack_core",
    _autoattack_adapter,
    "white-box",
    "the AutoAttack core: AutoAttack custom ['apgd-ce', 'apgd-t']",
    fixed=("version",),
    version="core",
)
register_attack(
    "autoattack_standard",
    _autoattack_adapter,
    "white-box",
    "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square",
    fixed=("version",),
    version="standard",
)
register_attack("square", square_correct, "black-box", "Square Attack (black-box)", n_queries=5000)


def _resolve(attack: str, overrides: dict) -> tuple[AttackSpec, dict]:
    """The attack's spec and its full settings; raises ValueError for unknown names/settings."""
    if attack not in ATTACKS:
        raise ValueError(
            f"unknown attack {attack!r}: choose one of {', '.join(ATTACKS)} "
            "(or add it with register_attack)"
        )
    spec = ATTACKS[attack]
    if not isinstance(overrides, dict):
        raise ValueError(f"settings for {attack!r} must be a dict, e.g. {attack}={{'restarts': 2}}")
    for key in spec.fixed:
        if key in overrides and overrides[key] != spec.defaults[key]:
            hint = " (e.g. 'pgd' with steps=...)" if key == "steps" else ""
            raise ValueError(
                f"{attack!r} fixes {key}={spec.defaults[key]!r}: drop {key} or use "
                f"another attack name{hint}"
            )
    unknown = set(overrides) - spec.allowed_settings() - set(spec.fixed)
    if unknown:
        raise ValueError(
            f"{attack!r} takes no setting(s) {sorted(unknown)}: "
            f"use {sorted(spec.allowed_settings()) or 'none'}"
        )
    return spec, {**spec.defaults, **overrides}


def _unpack(result, name: str, warnings_: dict) -> torch.Tensor:
    if isinstance(result, tuple):
        result, msgs = result
        if msgs:
            warnings_[name] = list(msgs)
    return result


def run_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: str,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    desc: str | None = None,
    **settings,
) -> torch.Tensor:
    """Per image "still correct" under the registered ``attack`` (``clean`` needs no eps);
    ``settings`` are ``eps`` and the attack's own (e.g. steps, alpha, restarts for ``pgd``)."""
    eps = settings.pop("eps", None)
    spec, full = _resolve(attack, settings)
    if spec.kind != "none":
        if eps is None:
            raise ValueError(f"attack {attack!r} needs eps=<L-inf budget>: pass e.g. eps=0.1")
        _check_eps(eps)
    return _unpack(
        spec.fn(
            model, x, y, eps, seed=seed, device=device, batch_size=batch_size, desc=desc, **full
        ),
        attack,
        {},
    )


# ----------------------------------------------------------------------------------------------
# The suite


def _worst_case(table: pd.DataFrame) -> pd.Series:
    cols = [c for c in table.columns if c not in _META_COLUMNS + ("worst_case",)]
    return table[cols].all(axis=1)


def evaluate_suite(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    attacks: Sequence[str],
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    **settings: dict,
) -> pd.DataFrame:
    """One row per image: ``index``, ``label``, ``clean``, one bool column per attack, ``worst_case``.

    ``attacks`` are registry names (:data:`ATTACKS`), e.g. ``("pgd20", "autoattack_core",
    "square")``; ``settings`` override an attack's defaults by name, e.g.
    ``square={"n_queries": 1000}, pgd20={"restarts": 5}``. Every attack runs on all images with
    the same ``seed``. ``worst_case`` = clean & every attack column. AutoAttack's warnings, if
    any, are in ``table.attrs["warnings"]`` (attack name -> list of messages).
    """
    if isinstance(attacks, str):
        raise ValueError(f"attacks={attacks!r} is a string: pass a sequence, e.g. [{attacks!r}]")
    names = [a for a in dict.fromkeys(attacks) if a != "clean"]
    for key in settings:
        if key not in names:
            raise ValueError(
                f"settings given for {key!r}, which is not among attacks {names}: "
                f"add it to attacks or drop the setting"
            )
    for a, overrides in settings.items():
        if isinstance(overrides, dict) and "eps" in overrides:
            raise ValueError(f"eps is set once for the whole suite: drop eps from {a}'s settings")
    resolved = {a: _resolve(a, settings.get(a, {})) for a in names}
    _check_eps(eps)
    _check_inputs(model, x, y, device, batch_size, seed)

    warnings_: dict[str, list[str]] = {}
    cols = {
        "index": np.arange(len(y)),
        "label": y.cpu().numpy(),
        "clean": clean_correct(model, x, y, device=device, batch_size=batch_size).numpy(),
    }
    for a, (spec, full) in resolved.items():
        res = spec.fn(
            model,
            x,
            y,
            eps,
            seed=seed,
            device=device,
            batch_size=batch_size,
            desc=a if progress else None,
            **full,
        )
        cols[a] = _unpack(res, a, warnings_).cpu().numpy().astype(bool)
    table = pd.DataFrame(cols)
    table["worst_case"] = _worst_case(table)
    table.attrs["warnings"] = warnings_
    table.attrs["eps"] = float(eps)
    table.attrs["seed"] = seed
    return table


def add_attack_column(per_sample: pd.DataFrame, name: str, correct) -> pd.DataFrame:
    """A copy of ``per_sample`` with another attack's column (same images, same order) and the
    worst case recomputed: how a chapter adds e.g. an adaptive attack to the suite."""
    if name in _META_COLUMNS + ("clean", "worst_case"):
        raise ValueError(f"{name!r} is reserved: pick another column name")
    values = np.asarray(correct.cpu() if isinstance(correct, torch.Tensor) else correct)
    if values.shape != (len(per_sample),):
        raise ValueError(
            f"{name!r} has shape {values.shape} but the table has {len(per_sample)} rows: "
            "pass one value per image, in the table's order"
        )
    if values.dtype != bool:
        raise ValueError(f"{name!r} has dtype {values.dtype}: pass booleans (True = still correct)")
    out = per_sample.drop(columns=["worst_case"]).copy()
    out[name] = values
    out["worst_case"] = _worst_case(out)
    out.attrs = dict(per_sample.attrs)
    return out


def summarise(per_sample: pd.DataFrame, z: float = Z95) -> pd.DataFrame:
    """A tidy table: one row per bool column (clean, attacks, worst_case) with attack, n,
    correct, accuracy and the Wilson score interval (ci_low, ci_high; 95 % by default)."""
    rows = []
    for col in per_sample.columns:
        if col in _META_COLUMNS or per_sample[col].dtype != bool:
            continue
        n, k = len(per_sample), int(per_sample[col].sum())
        low, high = wilson_interval(k, n, z)
        rows.append(
            {"attack": col, "n": n, "correct": k, "accuracy": k / n, "ci_low": low, "ci_high": high}
        )
    return pd.DataFrame(rows, columns=["attack", "n", "correct", "accuracy", "ci_low", "ci_high"])


# ----------------------------------------------------------------------------------------------
# Sanity checks (Carlini et al. 2019)


def _paired(
    stronger: np.ndarray, weaker: np.ndarray, alpha: float, a: str, b_name: str
) -> tuple[bool, str]:
    """Is attack ``a`` (should be at least as strong; per-image correct ``stronger``) significantly
    weaker than attack ``b_name`` (per-image correct ``weaker``) on these images?"""
    b = int((stronger & ~weaker).sum())  # survives a, broken by b_name
    c = int((~stronger & weaker).sum())
    p = paired_exact_p(b, c)
    return p < alpha, (
        f"{b} images survive {a} but not {b_name}, {c} the reverse: one-sided exact p = {p:.3g}"
    )


def sanity_checks(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    seed: int = 0,
    device="cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    eps_multipliers: Sequence[float] = (1, 2, 4),
    eps_max: float = 0.5,
    max_final_accuracy: float = 0.02,
    sweep_steps: int = 50,
    few_steps: int = 10,
    many_steps: int = 100,
    restarts: int = 5,
    square_queries: int = 5000,
    alpha: float = 0.05,
    per_sample: pd.DataFrame | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Four checks after Carlini et al. 2019, as a tidy table
    (check, setting, accuracy, n, expected, passed, detail); ``passed`` is the check's verdict,
    repeated on each of its rows.

    a. ``eps_sweep``: PGD-``sweep_steps`` at eps x ``eps_multipliers`` (capped at 1) and at
       ``eps_max``. Passes iff accuracy at the largest budget is <= ``max_final_accuracy`` and no
       step of the curve goes up significantly (paired rule below).
    b. ``more_steps``: PGD with ``few_steps`` vs ``many_steps`` (same random starts). Passes
       unless the many-step attack is significantly weaker.
    c. ``more_restarts``: PGD-``few_steps`` with 1 vs ``restarts`` restarts. Restart 0 is the same
       draw in both runs, so for a deterministic model this cannot fail; it fails when the
       model's output is random or stateful (another symptom Carlini et al. list).
    d. ``black_vs_white``: Square (``square_queries``) vs the white-box worst case (every PGD run
       above at eps, plus the white-box columns of ``per_sample`` if given, e.g. AutoAttack from
       :func:`evaluate_suite` on the same images). Passes unless Square is significantly stronger.

    The paired rule: with A the attack that should be at least as strong, count the images A
    leaves correct but B breaks (b) and the reverse (c); the check fails iff the one-sided exact
    McNemar test (:func:`paired_exact_p`) gives p < ``alpha``. So acc(A) may exceed acc(B) by
    sampling noise, never by a margin that chance on these images does not explain.
    """
    dev = _check_inputs(model, x, y, device, batch_size, seed)
    _check_eps(eps)
    _check_eps(eps_max, "eps_max", allow_one=True)
    if not eps_multipliers or any(
        not (isinstance(m, (int, float)) and m > 0) for m in eps_multipliers
    ):
        raise ValueError(
            f"eps_multipliers={eps_multipliers!r}: pass positive numbers, e.g. (1, 2, 4)"
        )
    for name, v in (
        ("sweep_steps", sweep_steps),
        ("few_steps", few_steps),
        ("many_steps", many_steps),
        ("restarts", restarts),
        ("square_queries", square_queries),
    ):
        _check_positive_int(v, name)
    if not 0.0 <= max_final_accuracy < 1.0:
        raise ValueError(f"max_final_accuracy={max_final_accuracy}: use a value in [0, 1)")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha}: use a significance level in (0, 1), e.g. 0.05")
    if per_sample is not None and len(per_sample) != len(y):
        raise ValueError(
            f"per_sample has {len(per_sample)} rows but x has {len(y)} images: "
            "pass the evaluate_suite table of these same images"
        )

    n = len(y)
    rows: list[dict] = []

    def pgd(e, steps, r=1, tag=""):
        return _pgd(
            model,
            x,
            y,
            e,
            steps,
            2.5 * e / steps,
            r,
            seed,
            dev,
            batch_size,
            f"sanity {tag}" if progress else None,
        ).numpy()

    def add(check, setting, ok, expected):
        rows.append(
            {
                "check": check,
                "setting": setting,
                "accuracy": float(ok.mean()),
                "n": n,
                "expected": expected,
            }
        )

    # a. accuracy -> 0 as eps grows
    budgets = sorted({min(1.0, float(m) * eps) for m in eps_multipliers} | {float(eps_max)})
    curve = {e: pgd(e, sweep_steps, tag=f"eps={e:g}") for e in budgets}
    bad = []
    for lo, hi in zip(budgets, budgets[1:]):
        worse, msg = _paired(curve[hi], curve[lo], alpha, f"eps={hi:g}", f"eps={lo:g}")
        if worse:
            bad.append(f"accuracy goes up from eps={lo:g} to {hi:g} ({msg})")
    final = float(curve[budgets[-1]].mean())
    passed_a = not bad and final <= max_final_accuracy
    detail_a = "; ".join(bad) or "non-increasing up to noise"
    if final > max_final_accuracy:
        detail_a += f"; accuracy {final:.3f} at eps={budgets[-1]:g} exceeds {max_final_accuracy}"
    start = len(rows)
    for e in budgets:
        add(
            "eps_sweep",
            f"PGD-{sweep_steps} eps={e:g}",
            curve[e],
            f"non-increasing; <= {max_final_accuracy:g} at eps={budgets[-1]:g}",
        )
    for r in rows[start:]:
        r.update(passed=passed_a, detail=detail_a)

    # b. more steps never help the defender
    few = pgd(eps, few_steps, tag=f"PGD-{few_steps}")
    many = pgd(eps, many_steps, tag=f"PGD-{many_steps}")
    worse, msg = _paired(many, few, alpha, f"PGD-{many_steps}", f"PGD-{few_steps}")
    start = len(rows)
    add(
        "more_steps",
        f"PGD-{few_steps}",
        few,
        f"acc(PGD-{many_steps}) <= acc(PGD-{few_steps}) up to noise",
    )
    add(
        "more_steps",
        f"PGD-{many_steps}",
        many,
        f"acc(PGD-{many_steps}) <= acc(PGD-{few_steps}) up to noise",
    )
    for r in rows[start:]:
        r.update(passed=not worse, detail=msg)

    # c. more restarts never help the defender (few = 1 restart, same seed)
    multi = pgd(eps, few_steps, restarts, tag=f"PGD-{few_steps}x{restarts}")
    worse, msg = _paired(multi, few, alpha, f"{restarts} restarts", "1 restart")
    start = len(rows)
    add("more_restarts", f"PGD-{few_steps} x1", few, f"acc(x{restarts}) <= acc(x1) up to noise")
    add(
        "more_restarts",
        f"PGD-{few_steps} x{restarts}",
        multi,
        f"acc(x{restarts}) <= acc(x1) up to noise",
    )
    for r in rows[start:]:
        r.update(passed=not worse, detail=msg)

    # d. black-box is never stronger than white-box
    white = curve.get(float(eps), np.ones(n, bool)) & few & many & multi
    extra = []
    if per_sample is not None:
        for col in per_sample.columns:
            if col in _META_COLUMNS + ("clean", "worst_case") or per_sample[col].dtype != bool:
                continue
            if col in ATTACKS and ATTACKS[col].kind != "white-box":
                continue
            white = white & per_sample[col].to_numpy()
            extra.append(col)
    square = _square(
        model,
        x,
        y,
        float(eps),
        int(square_queries),
        0.8,
        seed,
        dev,
        batch_size,
        "sanity square" if progress else None,
    ).numpy()
    worse, msg = _paired(white, square, alpha, "white-box", "Square")
    start = len(rows)
    white_name = "white-box worst case (PGD runs" + (f" + {', '.join(extra)})" if extra else ")")
    add(
        "black_vs_white",
        f"Square {square_queries} queries",
        square,
        "acc(Square) >= acc(white-box) up to noise",
    )
    add("black_vs_white", white_name, white, "acc(Square) >= acc(white-box) up to noise")
    for r in rows[start:]:
        r.update(passed=not worse, detail=msg)

    return pd.DataFrame(
        rows, columns=["check", "setting", "accuracy", "n", "expected", "passed", "detail"]
    )
