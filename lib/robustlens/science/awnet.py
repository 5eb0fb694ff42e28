"""AW-Net (Wei & Zhao): a network whose filters are scaled per input by an adversarial router.

What [WZ]'s framework figure shows: an *adversarial router* (a feature extractor on the raw
input, one *signal head* per dynamic block giving a regulation signal per filter, a *type head*
giving p(adversarial | x)) and a *dynamic-weight classifier* whose blocks multiply their conv's
filters by the signal and normalise with *MixBN* (a clean and an adversarial BatchNorm: a hard
switch by the known type in training, both weighted by the type head at test time).

Our choices where the figure is silent, each a parameter of :func:`build_awnet`: the signal is
a sigmoid of the head's output rescaled to ``signal_range`` (by default 0 to 2), exactly 1 at
initialisation, so the net starts as its static twin; the extractor is two conv-BN-ReLU layers;
one type head shared by all blocks or one per block; which convs vary; every BatchNorm of the
classifier is a MixBN. The classifier is built from the static
twin itself (:func:`twin_of`), so it has the same widths and, for the same seed, the same initial
weights.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.science import models, seeding

VARY = ("all", "early", "late", "none")  # which of the classifier's convs get a signal
TYPE_HEADS = ("shared", "per_block")
SIGNAL_RANGE = (0.0, 2.0)  # the signal's (low, high): filters are scaled by 0 to 2x by default
CLEAN, ADVERSARIAL = 0, 1


@dataclass
class Routing:
    """What the router decided for one batch, read by every unit of the classifier.

    ``types`` (0 clean / 1 adversarial per example) is set in training: MixBN switches hard on
    it. Otherwise MixBN mixes its two BatchNorms by ``p_adv`` (one column per type head).
    """

    signals: list[torch.Tensor]  # one (N, C) tensor per varied conv
    type_logits: list[torch.Tensor]  # one (N, 2) tensor per type head
    types: torch.Tensor | None = None
    forced: int | None = None  # a type every MixBN is forced to (the "forced router" attacks)
    head_of_unit: list[int] = field(default_factory=list)

    def p_adv(self, unit: int) -> torch.Tensor:
        head = self.head_of_unit[unit] if self.head_of_unit else 0
        return F.softmax(self.type_logits[head], 1)[:, ADVERSARIAL]


def check_signal_range(signal_range) -> tuple[float, float]:
    """``(low, high)`` as floats, or one line naming the fix: a signal scales filters, so it is
    positive, and it starts at 1 (the static twin), so 1 lies strictly inside the range."""
    try:
        low, high = (float(v) for v in signal_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"signal_range={signal_range!r}: give two numbers (low, high), e.g. (0, 2)"
        ) from None
    if not (0.0 <= low < 1.0 < high < float("inf")):
        raise ValueError(
            f"signal_range=({low:g}, {high:g}): a signal scales filters, so it needs "
            "0 <= low < 1 < high (it starts at 1); e.g. signal_range=(0, 2)"
        )
    return low, high


def signal(z: torch.Tensor, signal_range: tuple[float, float] = SIGNAL_RANGE) -> torch.Tensor:
    """The regulation signal from a signal head's output ``z``: a sigmoid rescaled to
    ``(low, high)`` and shifted so that ``z = 0`` gives exactly 1."""
    low, high = signal_range
    shift = math.log((1.0 - low) / (high - 1.0))  # sigmoid(shift) = (1 - low) / (high - low)
    return low + (high - low) * torch.sigmoid(z + shift)


class WeightVariedConv2d(nn.Module):
    """A conv whose filters are scaled per sample: filter ``o`` of sample ``n`` is ``w_o * s[n, o]``.

    By linearity (no bias) that is the plain conv followed by a per-sample, per-output-channel
    scale, so no per-sample weight tensor is ever built.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.bias is not None:
            raise ValueError("WeightVariedConv2d needs a conv without bias (a BatchNorm follows)")
        self.conv = conv

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x)
        return out if scale is None else out * scale[:, :, None, None]


class MixBN(nn.Module):
    """Two BatchNorms, clean and adversarial (Xie et al.'s auxiliary BN; [WZ]'s MixBN).

    Training (``routing.types`` given): each example goes through the BN of its known type.
    Otherwise: both run and their outputs are summed, weighted by p(clean) and p(adversarial).
    ``mix=False`` is the ablation with one BatchNorm for all inputs.
    """

    def __init__(self, channels: int, mix: bool = True):
        super().__init__()
        self.clean = nn.BatchNorm2d(channels)
        self.adv = nn.BatchNorm2d(channels) if mix else None

    def forward(self, x: torch.Tensor, routing: Routing, unit: int) -> torch.Tensor:
        if self.adv is None:
            return self.clean(x)
        if routing.forced is not None:
            return (self.clean, self.adv)[routing.forced](x)
        if routing.types is not None:
            return self._switched(x, routing.types)
        p = routing.p_adv(unit)[:, None, None, None]
        return (1 - p) * self.clean(x) + p * self.adv(x)

    def _switched(self, x: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        n_clean = int((types == CLEAN).sum())
        if bool((types[:n_clean] == CLEAN).all()):  # clean rows first (the recipe's batches):
            # split, not slicing: its backward is one cat, where each slice's backward would
            # zero-fill a gradient the size of the whole batch.
            parts = x.split([n_clean, len(x) - n_clean])
            out = [bn(part) for bn, part in zip((self.clean, self.adv), parts) if len(part)]
            return torch.cat(out) if len(out) > 1 else out[0]
        out = torch.empty_like(x)
        for kind, bn in ((CLEAN, self.clean), (ADVERSARIAL, self.adv)):
            rows = types == kind
            if rows.any():
                out[rows] = bn(x[rows])
        return out

    def affine(self, routing: Routing, unit: int) -> tuple[torch.Tensor, torch.Tensor]:
        """In eval mode, the whole MixBN as one per-sample, per-channel ``x * a + b``: each
        BatchNorm is affine on its running statistics, and so is their p-weighted sum."""
        bns = [self.clean] if self.adv is None else [self.clean, self.adv]
        scales, shifts = [], []
        for bn in bns:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            scales.append(scale)
            shifts.append(bn.bias - bn.running_mean * scale)
        if len(bns) == 1 or routing.forced is not None:
            k = 0 if len(bns) == 1 else routing.forced
            return scales[k][None], shifts[k][None]
        p = routing.p_adv(unit)[:, None]
        return (1 - p) * scales[0] + p * scales[1], (1 - p) * shifts[0] + p * shifts[1]


class Unit(nn.Module):
    """conv -> (per-sample scale) -> MixBN: the dynamic part of an AW-Net block."""

    def __init__(self, conv: nn.Conv2d, index: int, signal_index: int | None, mix: bool):
        super().__init__()
        self.conv = WeightVariedConv2d(conv)
        self.bn = MixBN(conv.out_channels, mix)
        self.index, self.signal_index = index, signal_index

    def forward(self, x, routing: Routing):
        scale = None if self.signal_index is None else routing.signals[self.signal_index]
        if self.training or routing.types is not None:
            return self.bn(self.conv(x, scale), routing, self.index)
        # Eval mode: the signal and MixBN fold into one per-sample affine map of the plain conv
        # (exactly equal, fewer passes over the activations; the attacks run here).
        a, b = self.bn.affine(routing, self.index)
        if scale is not None:
            a = a * scale
        return torch.addcmul(b[:, :, None, None], self.conv.conv(x), a[:, :, None, None])


class AdversarialRouter(nn.Module):
    """Feature extractor on the raw input, a signal head per varied conv, the type head(s).

    The signal heads' weights start at zero, so every signal starts at exactly 1.
    """

    def __init__(
        self,
        in_channels: int,
        signal_channels: list[int],
        n_type_heads: int,
        width: int = 16,
        signal_range: tuple[float, float] = SIGNAL_RANGE,
    ):
        super().__init__()
        self.signal_range = check_signal_range(signal_range)
        self.extractor = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        feat = 2 * width
        self.signal_heads = nn.ModuleList(nn.Linear(feat, c) for c in signal_channels)
        for head in self.signal_heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.type_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(feat, feat), nn.ReLU(inplace=True), nn.Linear(feat, 2))
            for _ in range(n_type_heads)
        )

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feat = self.extractor(x)
        signals = [signal(h(feat), self.signal_range) for h in self.signal_heads]
        return signals, [h(feat) for h in self.type_heads]


class _Layer(nn.Module):
    """One conv-BN-ReLU(-pool) layer of the plain CNN, as a unit."""

    def __init__(self, unit: Unit, pool: nn.Module | None):
        super().__init__()
        self.unit, self.pool = unit, pool

    def forward(self, x, routing):
        x = F.relu(self.unit(x, routing), inplace=True)  # as the static twin
        return x if self.pool is None else self.pool(x)


class _Block(nn.Module):
    """A ResNet BasicBlock as units: conv1 -> MixBN -> ReLU -> conv2 -> MixBN, + shortcut, ReLU."""

    def __init__(self, unit1: Unit, unit2: Unit, shortcut: Unit | None):
        super().__init__()
        self.unit1, self.unit2, self.shortcut = unit1, unit2, shortcut

    def forward(self, x, routing):
        out = self.unit2(F.relu(self.unit1(x, routing), inplace=True), routing)
        skip = x if self.shortcut is None else self.shortcut(x, routing)
        return F.relu(out + skip, inplace=True)


class AWNet(nn.Module):
    """The AW-Net twin of a static zoo model: router + dynamic-weight classifier.

    ``model(x)`` returns the class logits (soft MixBN, signals included), so every attack of the
    book runs through the whole network; :meth:`route` and :meth:`forward_all` expose the router.
    """

    def __init__(self, stem: list[nn.Module], head: nn.Module, router: AdversarialRouter, n_units):
        super().__init__()
        self.body = nn.ModuleList(stem)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = head
        self.router = router
        self.n_units = n_units
        self.head_of_unit: list[int] = [0] * n_units
        self._forced: int | None = None

    def route(self, x: torch.Tensor, types: torch.Tensor | None = None) -> Routing:
        signals, type_logits = self.router(x)
        return Routing(signals, type_logits, types, self._forced, self.head_of_unit)

    def forward_all(self, x: torch.Tensor, types: torch.Tensor | None = None):
        """Logits and the routing (signals, type logits) of one batch."""
        routing = self.route(x, types)
        h = x
        for layer in self.body:
            h = layer(h, routing)
        return self.fc(torch.flatten(self.pool(h), 1)), routing

    def forward(self, x: torch.Tensor, types: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, types)[0]

    def p_adv(self, x: torch.Tensor) -> torch.Tensor:
        """p(adversarial | x), averaged over the type heads."""
        _, type_logits = self.router(x)
        return torch.stack([F.softmax(t, 1)[:, ADVERSARIAL] for t in type_logits]).mean(0)

    @contextmanager
    def forced(self, kind: int):
        """Every MixBN uses the BatchNorm of type ``kind`` whatever the type head says."""
        if kind not in (CLEAN, ADVERSARIAL):
            raise ValueError(f"forced type must be 0 (clean) or 1 (adversarial), got {kind!r}")
        before, self._forced = self._forced, kind
        try:
            yield self
        finally:
            self._forced = before


def _varied(index: int, n: int, vary: str) -> bool:
    return {"all": True, "none": False, "early": index < n / 2, "late": index >= n / 2}[vary]


def twin_of(
    static: nn.Module,
    in_channels: int,
    *,
    vary: str = "all",
    mixbn: bool = True,
    type_heads: str = "shared",
    router_width: int = 16,
    signal_range: tuple[float, float] = SIGNAL_RANGE,
) -> AWNet:
    """The AW-Net twin of a static :class:`~robustlens.science.models.PlainCNN` or
    :class:`~robustlens.science.models.ResNet`: the same convs (the very modules, so the same
    initial weights) and widths, every BatchNorm a MixBN, the chosen convs scaled by a signal.

    1x1 shortcut convs never vary (the figure scales the block's main conv).
    """
    signal_range = check_signal_range(signal_range)
    if vary not in VARY:
        raise ValueError(f"vary={vary!r}: choose one of {', '.join(VARY)}")
    if type_heads not in TYPE_HEADS:
        raise ValueError(f"type_heads={type_heads!r}: choose one of {', '.join(TYPE_HEADS)}")
    if isinstance(static, models.PlainCNN):
        convs: list[list] = []  # [conv, the max-pool after its ReLU or None]
        for m in static.features:
            if isinstance(m, nn.Conv2d):
                convs.append([m, None])
            elif isinstance(m, nn.MaxPool2d):
                convs[-1][1] = m
        n = len(convs)
        signal_of = _signal_indices([_varied(i, n, vary) for i in range(n)])
        units = [Unit(c, i, signal_of[i], mixbn) for i, (c, _) in enumerate(convs)]
        body = [_Layer(u, pool) for u, (_, pool) in zip(units, convs)]
    elif isinstance(static, models.ResNet):
        blocks = list(static.stages)
        main = [static.stem[0]] + [c for b in blocks for c in (b.conv1, b.conv2)]
        n = len(main)
        signal_of = _signal_indices([_varied(i, n, vary) for i in range(n)])
        units = [Unit(c, i, signal_of[i], mixbn) for i, c in enumerate(main)]
        index = n
        body = [_StemLayer(units[0])]
        for k, b in enumerate(blocks):
            shortcut = None
            if len(b.shortcut):
                shortcut = Unit(b.shortcut[0], index, None, mixbn)
                index += 1
            body.append(_Block(units[1 + 2 * k], units[2 + 2 * k], shortcut))
        n = index
    else:
        raise ValueError(
            f"no AW-Net twin for {type(static).__name__}: use a PlainCNN or ResNet zoo architecture"
        )
    channels = [u.conv.conv.out_channels for u in units if u.signal_index is not None]
    n_heads = 1 if type_heads == "shared" else len(body)
    router = AdversarialRouter(in_channels, channels, n_heads, router_width, signal_range)
    net = AWNet(body, static.fc, router, n)
    if type_heads == "per_block":
        owner = {}
        for b, layer in enumerate(body):
            for m in layer.modules():
                if isinstance(m, Unit):
                    owner[m.index] = b
        net.head_of_unit = [owner[i] for i in range(n)]
    return net


class _StemLayer(nn.Module):
    def __init__(self, unit: Unit):
        super().__init__()
        self.unit = unit

    def forward(self, x, routing):
        return F.relu(self.unit(x, routing), inplace=True)


def _signal_indices(varied: list[bool]) -> list[int | None]:
    out, k = [], 0
    for v in varied:
        out.append(k if v else None)
        k += v
    return out


def build_awnet(
    arch: str, in_channels: int = 1, num_classes: int = 10, seed: int | None = None, **options
) -> AWNet:
    """The AW-Net twin of zoo architecture ``arch`` (options: see :func:`twin_of`).

    With ``seed`` its classifier starts from the static twin's initial weights of that seed, and
    the router from weights of its own derived from the same seed.
    """
    static = models.build_model(arch, in_channels, num_classes, seed=seed)
    if seed is None:
        return twin_of(static, in_channels, **options)
    with seeding.seeded(seed, "init", "awnet-router", arch):
        return twin_of(static, in_channels, **options)


def unit_list(net: AWNet) -> list[Unit]:
    """The classifier's units in forward order (by index)."""
    return sorted((m for m in net.modules() if isinstance(m, Unit)), key=lambda u: u.index)


def effective_filters(net: AWNet, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Per varied conv, the filters each input actually gets: ``w * s[n]``, shape (N, O, I, k, k).

    For the [GK] metrics of the filters a clean or an adversarial input sees (computed for a
    batch of inputs, so mind N x the conv's size).
    """
    with torch.no_grad():
        signals, _ = net.router(x)
    out = []
    for u in unit_list(net):
        if u.signal_index is None:
            continue
        w = u.conv.conv.weight.detach()
        s = signals[u.signal_index]
        out.append((f"conv {u.index + 1}", s[:, :, None, None, None] * w[None]))
    return out
