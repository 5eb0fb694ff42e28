"""The one knob of scale: ``smoke`` / ``cpu`` / ``paper`` resolved into every size the book uses.

Every notebook takes a ``profile`` parameter and calls :func:`get_profile` first, so an
unknown profile or an impossible override fails in one line before any data is read or any
model is trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DATASETS = ("fashion-mnist", "cifar10")
# Kept here (not imported from models) so that validation needs nothing heavy.
ARCHITECTURES = ("cnn", "resnet", "wresnet", "resnet18", "deepcnn")


class ProfileError(ValueError):
    """A profile name or parameter that cannot be run; the message is one line with the fix."""


@dataclass(frozen=True)
class Profile:
    """Every size one scale of the book uses: data, training, attacks, sweeps and evaluation."""

    name: str
    dataset: str
    train_size: int | None  # None: the full training set
    test_size: int | None  # None: the full test set
    epochs: int
    batch_size: int
    lr: float
    arch: str  # the architecture of the first chapter's standard-vs-robust pair
    architectures: tuple[str, ...]  # the trained zoo
    eps: float  # L-infinity budget on inputs in [0, 1]
    pgd_train_steps: int
    pgd_eval_steps: int
    seeds: tuple[int, ...]
    zoo_test_size: int | None = None  # evaluation set of the whole zoo (chapters with many models)
    recipes: tuple[str, ...] = ("standard", "pgd", "trades", "fast")  # training methods of the zoo
    # The theory chapter's sweeps: input-gradient penalty weights (per norm) and PGD-AT budgets.
    gradpen_l1_lams: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
    gradpen_l2sq_lams: tuple[float, ...] = (0.1, 1.0, 10.0)
    at_eps_sweep: tuple[float, ...] = (0.03, 0.05, 0.1, 0.15)
    # AutoAttack (Croce & Hein 2020): the version the zoo's robust models get ("core" = APGD-CE +
    # APGD-T, AutoAttack's own custom version; "standard" = the full standard version), on how many
    # test images; chapter 01's pair gets the standard version on ``aa_pair_n_eval`` images.
    aa_version: str = "core"
    aa_n_eval: int | None = 100
    aa_pair_version: str = "standard"
    aa_pair_n_eval: int | None = 200
    # Images for the gradient-masking sanity checks (Carlini et al. 2019) of masking-prone models.
    sanity_n_eval: int = 100
    sanity_square_queries: int = 1000  # black-box Square's budget in the sanity checks
    trades_beta: float = 6.0
    weight_decay: float = 5e-4
    augment: bool = False  # random crop + flip; used for CIFAR-10 only
    # AW-Net (chapter 05): the ablations trained beside the full model (AWNET_ABLATIONS), the
    # router-evasion weights swept, and the AutoAttack version the full AW-Net gets (on
    # aa_n_eval images; its ablations get aa_version).
    awnet_ablations: tuple[str, ...] = ("no_router", "one_bn", "ce", "early", "late")
    # Router-evasion weights; kappa = 0 would be PGD itself (its own row of chapter 05's table).
    awnet_kappas: tuple[float, ...] = (1.0, 4.0, 16.0)
    awnet_aa_version: str = "standard"
    # The AW-Net's APGD with the router in the loss (router_apgd): the router term's weights
    # (below and above 1), its steps and random restarts, on the AutoAttack images.
    awnet_apgd_kappas: tuple[float, ...] = (0.25, 1.0, 4.0)
    awnet_apgd_steps: int = 100
    awnet_apgd_restarts: int = 2
    # Epochs of every AW-Net (None: the profile's ``epochs``). Its distillation loss moves the
    # weights more slowly than PGD-AT's cross-entropy, so one epoch can leave it near its init.
    awnet_epochs: int | None = None
    # Chapter 02's "less trained" control: standard models trained on this many images (the same
    # schedule, fewer steps), so that their weights move about as far from their initialisation
    # as PGD-AT's do. None: the profile trains no such control.
    short_standard_train_size: int | None = None
    # What the profile gives up against the papers' own setting, said in every chapter's set-up.
    traded: str = ""
    # The values a run changed (``-p KEY=VALUE``), shown in every chapter's set-up line.
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def pgd_train_alpha(self) -> float:
        # 2.5 * eps / steps: Madry et al.'s rule of thumb, so PGD can reach the boundary
        # from anywhere in the ball even with few steps.
        return 2.5 * self.eps / self.pgd_train_steps

    @property
    def pgd_eval_alpha(self) -> float:
        return 2.5 * self.eps / self.pgd_eval_steps

    def describe(self) -> str:
        n_train = "all" if self.train_size is None else f"{self.train_size:,}"
        n_test = "all" if self.test_size is None else f"{self.test_size:,}"
        return (
            f"profile '{self.name}': {self.dataset}, {n_train} training / {n_test} test images, "
            f"{self.epochs} epoch(s), L-inf eps={self.eps:.4g}, PGD-{self.pgd_train_steps} "
            f"training / PGD-{self.pgd_eval_steps} evaluation"
            + (
                "; changed for this run: " + ", ".join(f"{k} = {v}" for k, v in self.overrides)
                if self.overrides
                else ""
            )
        )


_PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        dataset="fashion-mnist",
        train_size=512,
        test_size=256,
        epochs=1,
        batch_size=128,
        lr=0.05,
        arch="cnn",
        architectures=("cnn", "resnet", "wresnet"),
        eps=0.1,
        pgd_train_steps=2,
        pgd_eval_steps=5,
        seeds=(0,),
        zoo_test_size=256,
        gradpen_l1_lams=(0.1,),
        gradpen_l2sq_lams=(1.0,),
        at_eps_sweep=(0.05, 0.1),
        aa_n_eval=32,
        aa_pair_n_eval=32,
        sanity_n_eval=32,
        sanity_square_queries=200,
        awnet_ablations=("no_router",),
        awnet_kappas=(4.0,),
        awnet_aa_version="core",
        awnet_apgd_kappas=(1.0,),
        awnet_apgd_steps=10,
        awnet_apgd_restarts=1,
        short_standard_train_size=256,
        traded=(
            "This is the test profile: 512 training images seen once, so its models are near "
            "their initialisation and every verdict below says so; its numbers test the code, "
            "not the papers."
        ),
    ),
    "cpu": Profile(
        # The default, chosen by measuring on 2 CPU cores (README, "Scale"): one epoch over all
        # 60,000 images moves every model's weights past the "trained" mark (median
        # ||W - W0|| / ||W0|| >= 0.5); 6,000 images x 3 epochs did not (0.39). The hour buys two
        # architectures (one with a 3x3 conv in every depth decile) x standard / PGD-AT x two
        # seeds, one step of each of chapter 04's sweeps, and one AW-Net.
        name="cpu",
        dataset="fashion-mnist",
        train_size=None,
        test_size=5_000,
        epochs=1,
        batch_size=128,
        lr=0.05,
        arch="cnn",
        architectures=("cnn", "deepcnn"),
        eps=0.1,
        pgd_train_steps=3,
        pgd_eval_steps=10,
        seeds=(0, 1),
        zoo_test_size=1000,
        recipes=("standard", "pgd"),
        gradpen_l1_lams=(0.1,),
        gradpen_l2sq_lams=(1.0,),
        at_eps_sweep=(0.1,),
        # The standard AutoAttack where a verdict rests on one model: chapter 01's pair, the
        # AW-Net and its static twin (the same cached evaluation); the core for the rest.
        aa_pair_n_eval=100,
        sanity_n_eval=50,
        awnet_ablations=(),
        # Measured: after one epoch the AW-Net's median layer had moved 0.49 of its initial
        # norm, under the "trained" mark of 0.5 that every static model of the profile passes.
        awnet_epochs=2,
        # Measured (seed 0): standard training on 30,000 images moved the median layer 0.50 (plain
        # CNN) / 0.51 (deep CNN) of its initial norm, on all 60,000 0.67 / 0.65; PGD-AT on all
        # 60,000 0.59 / 0.75. 45,000 puts the plain CNN's control near its PGD-AT model.
        short_standard_train_size=45_000,
        traded=(
            "Against the papers' setting, this profile trains on Fashion-MNIST instead of "
            "CIFAR-10, for one epoch instead of tens, with PGD-3 instead of PGD-10 in training, "
            "small networks instead of ResNet-18, PGD-AT as the only adversarial training "
            "method (no TRADES, no fast AT), two seeds per model, one penalty weight per norm and "
            "one PGD-AT budget in chapter 04 (its sweeps shrink to one step from the standard "
            "model), no AW-Net ablation (and the AW-Net trains for two epochs, where one left it near its "
            "initialisation), AutoAttack on 100 test images per robust model (its standard "
            "version for chapter 01's pair and for the AW-Net beside its static twin, its core "
            "APGD-CE and APGD-T for the rest) and the gradient-masking checks on 50: "
            "fewer models, each trained on all 60,000 images, rather than many barely trained "
            "ones. Any of these can be changed for a run, e.g. make book "
            'SET="recipes=standard,pgd,fast gradpen_l1_lams=0.03,0.1,0.3".'
        ),
    ),
    "paper": Profile(
        name="paper",
        dataset="cifar10",
        train_size=None,
        test_size=None,
        epochs=60,
        batch_size=128,
        lr=0.1,
        arch="resnet18",
        architectures=("resnet", "wresnet", "resnet18"),
        eps=8 / 255,
        pgd_train_steps=10,
        pgd_eval_steps=20,
        seeds=(0, 1),
        augment=True,
        gradpen_l1_lams=(0.003, 0.01, 0.03, 0.1),
        gradpen_l2sq_lams=(0.1, 1.0, 10.0),
        at_eps_sweep=(2 / 255, 4 / 255, 8 / 255, 12 / 255),
        aa_version="standard",
        aa_n_eval=None,
        aa_pair_n_eval=None,
        sanity_n_eval=1000,
        sanity_square_queries=5000,
        traded=(
            "This profile is the papers' setting (CIFAR-10, eps = 8/255, PGD-10 training, "
            "ResNet-18 and the standard AutoAttack on the whole test set), with 60 epochs where "
            "robust training often runs 100 to 200, and two seeds per model."
        ),
    ),
}

# The verdict profile: ``cpu`` with the seeds its tests need. An exact permutation test over
# seeds cannot reach p <= 0.05 with 2 against 2 (its smallest p is 1/3); 4 against 4 can (2/70),
# as can a claim pooled over both architectures (evidence.seeds_needed). Its seeds 0 and 1 are
# cpu's own models (the same specs, so the same cache entries): after a cpu build it trains only
# seeds 2 and 3, chapter 04's second penalty weight per norm and three smaller PGD-AT budgets.
_PROFILES["cpu4"] = dataclasses.replace(
    _PROFILES["cpu"],
    name="cpu4",
    seeds=(0, 1, 2, 3),
    gradpen_l1_lams=(0.03, 0.1),
    gradpen_l2sq_lams=(0.3, 1.0),
    # PGD-AT at small training budgets: static models near the AW-Net's clean accuracy, so
    # that chapter 05's frontier is measured where the AW-Net sits (claims.frontier_position).
    at_eps_sweep=(0.02, 0.03, 0.05, 0.1),
    traded=_PROFILES["cpu"]
    .traded.replace("two seeds per model", "four seeds per model")
    .replace(
        "one penalty weight per norm and one PGD-AT budget in chapter 04 (its sweeps shrink to "
        "one step from the standard model)",
        "two penalty weights per norm and four PGD-AT budgets (0.02 to 0.1) in chapter 04",
    ),
)
assert _PROFILES["cpu4"].traded != _PROFILES["cpu"].traded
_PROFILES = {name: _PROFILES[name] for name in ("smoke", "cpu", "cpu4", "paper")}  # by scale

PROFILE_NAMES = tuple(_PROFILES)
# Image counts where None (or "all") means the whole split.
OPTIONAL_SIZES = ("train_size", "test_size", "zoo_test_size", "aa_n_eval", "aa_pair_n_eval")
AA_VERSIONS = ("core", "standard")
# AW-Net's ablations (robustlens.science.awnet_training.ABLATIONS gives each one's settings).
AWNET_ABLATIONS = ("no_router", "one_bn", "ce", "early", "late", "per_block_type")


def _coerce(name: str, value, like):
    """Turn a command-line string into the field's type (papermill passes real types already)."""
    if isinstance(like, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        return tuple(type(like[0])(v) if like else v for v in value)
    if isinstance(like, bool):
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ProfileError(
                    f"parameter {name}={value!r} is not a boolean: use true or false"
                )
            return value.lower() in ("true", "1")
        return bool(value)
    if like is None:  # Optional[int] sizes
        return None if value in (None, "all", "None") else int(value)
    try:
        return type(like)(value)
    except (TypeError, ValueError):
        raise ProfileError(f"parameter {name}={value!r} is not a {type(like).__name__}") from None


def parse_overrides(pairs: list[str]) -> dict:
    """``["eps=0.2", "seeds=0,1,2"]`` -> ``{"eps": "0.2", "seeds": "0,1,2"}``: command-line
    overrides, typed and validated later by :func:`get_profile`."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ProfileError(f"override {pair!r} is not KEY=VALUE (e.g. -p eps=0.05)")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) if value else "none"
    return "all" if value is None else str(value)


def get_profile(name: str, **overrides) -> Profile:
    """Return the validated profile ``name`` with ``overrides`` applied.

    Raises :class:`ProfileError` (one line, naming the fix) for an unknown profile, an unknown
    parameter or an impossible value.
    """
    if name not in _PROFILES:
        raise ProfileError(f"unknown profile {name!r}: choose one of {', '.join(PROFILE_NAMES)}")
    base = _PROFILES[name]
    known = {f.name for f in dataclasses.fields(Profile)} - {"name", "traded", "overrides"}
    values = {}
    for key, value in overrides.items():
        if key not in known:
            raise ProfileError(
                f"unknown parameter {key!r}: known parameters are {', '.join(sorted(known))}"
            )
        like = getattr(base, key)
        if key in OPTIONAL_SIZES or key == "short_standard_train_size":
            like = None if value in (None, "all", "None") else 0
        values[key] = _coerce(key, value, like)
    changed = tuple(sorted((k, _shown(v)) for k, v in values.items() if v != getattr(base, k)))
    profile = dataclasses.replace(base, **values, overrides=changed)
    validate(profile)
    return profile


def validate(p: Profile) -> None:
    def bad(msg: str):
        raise ProfileError(f"profile '{p.name}': {msg}")

    if p.dataset not in DATASETS:
        bad(f"unknown dataset {p.dataset!r}: choose one of {', '.join(DATASETS)}")
    for arch in (p.arch, *p.architectures):
        if arch not in ARCHITECTURES:
            bad(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    if not p.architectures:
        bad("architectures is empty: name at least one architecture")
    if not (0.0 < p.eps < 1.0):
        bad(
            f"eps={p.eps} is impossible for inputs in [0, 1]: use 0 < eps < 1 (e.g. 0.1, or 8/255 on CIFAR-10)"
        )
    if p.epochs < 1:
        bad(f"epochs={p.epochs}: train for at least 1 epoch")
    if p.awnet_epochs is not None and p.awnet_epochs < 1:
        bad(f"awnet_epochs={p.awnet_epochs}: train the AW-Net for at least 1 epoch")
    if p.batch_size < 1:
        bad(f"batch_size={p.batch_size}: use a positive batch size")
    if not (0.0 < p.lr < 10.0):
        bad(f"lr={p.lr}: use a learning rate in (0, 10)")
    for key in ("pgd_train_steps", "pgd_eval_steps"):
        if getattr(p, key) < 1:
            bad(f"{key}={getattr(p, key)}: PGD needs at least 1 step")
    for key in OPTIONAL_SIZES:
        n = getattr(p, key)
        if n is not None and n < 1:
            bad(f"{key}={n}: use a positive number of images, or 'all'")
    if p.short_standard_train_size is not None and p.short_standard_train_size < 1:
        bad(
            f"short_standard_train_size={p.short_standard_train_size}: use a positive number of "
            "images, or None for no such control"
        )
    if p.sanity_n_eval < 1:
        bad(f"sanity_n_eval={p.sanity_n_eval}: use a positive number of images")
    if p.sanity_square_queries < 1:
        bad(f"sanity_square_queries={p.sanity_square_queries}: use a positive number of queries")
    for key in ("aa_version", "aa_pair_version", "awnet_aa_version"):
        if getattr(p, key) not in AA_VERSIONS:
            bad(f"{key}={getattr(p, key)!r}: choose one of {', '.join(AA_VERSIONS)}")
    for name in p.awnet_ablations:
        if name not in AWNET_ABLATIONS:
            bad(f"unknown AW-Net ablation {name!r}: choose from {', '.join(AWNET_ABLATIONS)}")
    if not p.awnet_kappas or any(not (k >= 0) for k in p.awnet_kappas):
        bad(f"awnet_kappas={p.awnet_kappas}: give router-evasion weights >= 0, e.g. 1,4,16")
    if not p.awnet_apgd_kappas or any(not (k >= 0) for k in p.awnet_apgd_kappas):
        bad(f"awnet_apgd_kappas={p.awnet_apgd_kappas}: give router weights >= 0, e.g. 0.25,1,4")
    for key in ("awnet_apgd_steps", "awnet_apgd_restarts"):
        if getattr(p, key) < 1:
            bad(f"{key}={getattr(p, key)}: use at least 1")
    if not p.seeds:
        bad("seeds is empty: give at least one seed")
    repeated = sorted({s for s in p.seeds if p.seeds.count(s) > 1})
    if repeated:
        # The same seed twice is the same model twice: a seed spread of 0, not a replicate.
        bad(f"seeds={p.seeds} repeats {repeated}: give distinct seeds, e.g. 0,1,2,3")
    from_recipes = ("standard", "pgd", "trades", "fast")
    for r in p.recipes:
        if r not in from_recipes:
            bad(f"unknown training method {r!r} in recipes: choose from {', '.join(from_recipes)}")
    for key in ("gradpen_l1_lams", "gradpen_l2sq_lams"):
        if any(not (lam >= 0) for lam in getattr(p, key)):
            bad(f"{key}={getattr(p, key)}: penalty weights must be >= 0")
    if any(not (0.0 < e < 1.0) for e in p.at_eps_sweep):
        bad(f"at_eps_sweep={p.at_eps_sweep}: every eps must be in (0, 1)")
    if p.trades_beta < 0:
        bad(f"trades_beta={p.trades_beta}: TRADES' beta must be >= 0")
    if p.weight_decay < 0:
        bad(f"weight_decay={p.weight_decay}: must be >= 0")
