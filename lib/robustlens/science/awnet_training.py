"""Training AW-Net as a recipe of the book's one training loop.

Each batch gives its clean images (type 0) and PGD examples made against the whole AW-Net,
router and soft MixBN included (type 1). The classifier learns by adversarial distillation
(Zhao et al.'s MTARD, the loss [WZ]'s framework figure names): KL to the book's own standard
teacher on clean inputs and to its own robust teacher on adversarial inputs, the two weights
fixed at 1/2 or re-balanced every step as in MTARD's published code; the router's type head(s)
learn the known type (cross-entropy, weight ``gamma``). ``loss="ce"`` replaces distillation by
cross-entropy on the labels: an ablation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import attacks, awnet, seeding, training
from robustlens.science.profiles import AWNET_ABLATIONS, Profile

LOSSES = ("distill", "ce")
BALANCES = ("mtard", "fixed")
# Defaults of the parameters: our choices unless noted. rate = MTARD's weight_learn_rate.
DEFAULTS = {
    "loss": "distill",
    "balance": "mtard",
    "rate": 0.025,
    "gamma": 1.0,
    "teacher": "pgd",  # the recipe of the robust teacher, a zoo model of the same arch and seed
    "vary": "all",
    "mixbn": True,
    "type_heads": "shared",
    "router_width": 16,
    "signal_range": awnet.SIGNAL_RANGE,
}
NET_OPTIONS = ("vary", "mixbn", "type_heads", "router_width", "signal_range")
TEACHER_RECIPES = ("pgd", "trades", "fast")
# Each ablation of chapter 05: the parameters that differ from the full AW-Net.
ABLATIONS = {
    "no_router": {"vary": "none"},  # constant signal 1: only MixBN stays dynamic
    "one_bn": {"mixbn": False},  # one BatchNorm for all inputs: only the signals stay dynamic
    "ce": {"loss": "ce"},  # cross-entropy on the labels instead of distillation
    "early": {"vary": "early"},  # only the first half of the convs vary
    "late": {"vary": "late"},  # only the second half
    "per_block_type": {"type_heads": "per_block"},  # a type head per block, not one shared
}
assert tuple(ABLATIONS) == AWNET_ABLATIONS, "profiles.AWNET_ABLATIONS must list the ablations"


def settings(profile: Profile, **params) -> dict:
    """Every value the AW-Net recipe uses (the model's cache key records this dict): PGD-AT's
    training attack at the profile's eps and steps, the loss and the net's options."""
    attack = training.recipe_settings("pgd", profile)
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(
            f"training method 'awnet' takes no parameter(s) {sorted(unknown)}: "
            f"it takes {sorted(DEFAULTS)}"
        )
    s = {**DEFAULTS, **params}
    if s["loss"] not in LOSSES:
        raise ValueError(f"awnet: loss={s['loss']!r}: choose one of {', '.join(LOSSES)}")
    if s["balance"] not in BALANCES:
        raise ValueError(f"awnet: balance={s['balance']!r}: choose one of {', '.join(BALANCES)}")
    if s["teacher"] not in TEACHER_RECIPES:
        raise ValueError(
            f"awnet: teacher={s['teacher']!r}: choose one of {', '.join(TEACHER_RECIPES)}"
        )
    if s["vary"] not in awnet.VARY:
        raise ValueError(f"awnet: vary={s['vary']!r}: choose one of {', '.join(awnet.VARY)}")
    if s["type_heads"] not in awnet.TYPE_HEADS:
        raise ValueError(
            f"awnet: type_heads={s['type_heads']!r}: choose one of {', '.join(awnet.TYPE_HEADS)}"
        )
    for key in ("rate", "gamma"):
        s[key] = float(s[key])
        if not s[key] >= 0:
            raise ValueError(f"awnet: {key}={s[key]} must be >= 0")
    s["mixbn"] = bool(s["mixbn"])
    s["router_width"] = int(s["router_width"])
    s["signal_range"] = list(awnet.check_signal_range(s["signal_range"]))  # a list, as JSON has it
    net = {k: s.pop(k) for k in NET_OPTIONS}
    return {**attack, **s, "net": net}


def kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per example, averaged over the batch."""
    return F.kl_div(
        F.log_softmax(student_logits, 1), F.softmax(teacher_logits, 1), reduction="batchmean"
    )


def type_loss(routing: awnet.Routing, types: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of every type head against the known types, and the heads' mean accuracy."""
    losses = [F.cross_entropy(t, types) for t in routing.type_logits]
    acc = [float((t.argmax(1) == types).float().mean()) for t in routing.type_logits]
    return torch.stack(losses).mean(), sum(acc) / len(acc)


class Balance:
    """The two loss weights: fixed at 1/2, or MTARD's re-balancing.

    MTARD (Zhao et al. 2022, published code): with each loss's progress l_hat = loss / its first
    value, w_nat <- w_nat - rate * (w_nat - l_hat_nat / (l_hat_nat + l_hat_adv)), w_adv = 1 - w_nat:
    the loss that has fallen less, relative to where it started, gets more weight.
    """

    def __init__(self, kind: str, rate: float):
        self.kind, self.rate = kind, rate
        self.w_nat = 0.5
        self.first: tuple[float, float] | None = None

    def weights(self, loss_nat: float, loss_adv: float) -> tuple[float, float]:
        if self.kind == "mtard":
            if self.first is None:
                self.first = (max(loss_nat, 1e-12), max(loss_adv, 1e-12))
            nat, adv = loss_nat / self.first[0], loss_adv / self.first[1]
            self.w_nat -= self.rate * (self.w_nat - nat / max(nat + adv, 1e-12))
        return self.w_nat, 1.0 - self.w_nat


class Recipe:
    """``recipe(model, x, y) -> loss`` for :func:`robustlens.science.training.train`, keeping a
    per-step log (losses, weights, the type heads' accuracy) for the training curves."""

    def __init__(
        self, s: dict, standard_teacher: nn.Module | None, robust_teacher: nn.Module | None
    ):
        if s["loss"] == "distill" and (standard_teacher is None or robust_teacher is None):
            raise ValueError("awnet: distillation needs a standard and a robust teacher")
        self.s = s
        self.teachers = (standard_teacher, robust_teacher)
        for t in self.teachers:
            if t is not None:
                t.eval().requires_grad_(False)
        self.balance = Balance(s["balance"] if s["loss"] == "distill" else "fixed", s["rate"])
        self.steps: list[dict] = []

    def __call__(self, model: awnet.AWNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, n = self.s, len(y)
        # Against the whole network as it would answer at test time (eval mode: soft MixBN by
        # the type head, the router's signals), so the router is attacked too.
        adv = attacks.pgd(model, x, y, s["eps"], s["alpha"], s["steps"])
        types = torch.cat([torch.zeros(n), torch.ones(n)]).long().to(x.device)
        logits, routing = model.forward_all(torch.cat([x, adv]), types)
        clean_logits, adv_logits = logits[:n], logits[n:]
        if s["loss"] == "distill":
            with torch.no_grad():
                teacher_clean = self.teachers[0](x)
                teacher_adv = self.teachers[1](adv)
            loss_nat, loss_adv = kl(clean_logits, teacher_clean), kl(adv_logits, teacher_adv)
        else:
            loss_nat, loss_adv = F.cross_entropy(clean_logits, y), F.cross_entropy(adv_logits, y)
        w_nat, w_adv = self.balance.weights(loss_nat.item(), loss_adv.item())
        t_loss, t_acc = type_loss(routing, types)
        self.steps.append(
            {
                "loss_nat": loss_nat.item(),
                "loss_adv": loss_adv.item(),
                "type_loss": t_loss.item(),
                "type_acc": t_acc,
                "w_nat": w_nat,
            }
        )
        return w_nat * loss_nat + w_adv * loss_adv + s["gamma"] * t_loss


def same_work_on(recipe: Recipe):
    """The AW-Net recipe's work without its dynamic parts, as a loss for a *static* model: PGD
    against it, the clean and adversarial halves through it, the teachers and the same losses;
    no router, no MixBN, no signals. Timing a static model on it separates what the recipe costs
    (twice the images, the teachers) from what the dynamic architecture costs."""
    s = recipe.s

    def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(y)
        adv = attacks.pgd(model, x, y, s["eps"], s["alpha"], s["steps"])
        logits = model(torch.cat([x, adv]))
        if s["loss"] == "distill":
            with torch.no_grad():
                teacher_clean = recipe.teachers[0](x)
                teacher_adv = recipe.teachers[1](adv)
            return 0.5 * kl(logits[:n], teacher_clean) + 0.5 * kl(logits[n:], teacher_adv)
        return 0.5 * F.cross_entropy(logits[:n], y) + 0.5 * F.cross_entropy(logits[n:], y)

    return step


def monitor(images: torch.Tensor, labels: torch.Tensor, eps: float, steps: int, seed: int = 0):
    """A training monitor: :func:`robustlens.science.training.pgd_monitor`'s clean and PGD
    accuracy after every epoch, plus the type head's accuracy on the clean images and on their
    PGD examples (the router's job)."""

    def log(model: awnet.AWNet, epoch: int) -> dict:
        device = next(model.parameters()).device
        x, y = images.to(device), labels.to(device)
        with seeding.seeded(seed, "monitor", epoch, device=device):
            adv = attacks.pgd(model, x, y, eps, 2.5 * eps / steps, steps)
        with torch.no_grad():
            return {
                "epoch": epoch + 1,
                "pgd_acc": float((model(adv).argmax(1) == y).float().mean()),
                "clean_acc": float((model(x).argmax(1) == y).float().mean()),
                "type_acc_clean": float((model.p_adv(x) < 0.5).float().mean()),
                "type_acc_adv": float((model.p_adv(adv) >= 0.5).float().mean()),
            }

    return log
