"""The architecture registry: a plain CNN, ResNet-style nets, ResNet-18, a deep narrow CNN.

All models take images in [0, 1] with no input normalisation (as [GK]'s normal counterparts),
so an L-infinity budget on the input means the same thing for every model.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from robustlens.science import seeding
from robustlens.science.profiles import ARCHITECTURES


class PlainCNN(nn.Module):
    """Five 3x3 conv-BN-ReLU layers (VGG-style, no skips), two early max-pools (cheap on 2 CPU
    cores), global average pooling, a linear layer. Without BatchNorm this net barely moves in the
    few hundred SGD steps of the ``cpu`` profile."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths=(32, 32, 64, 64, 128),
        pool_after=(0, 2),
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR-style ResNet: 3x3 stem, stages of BasicBlocks (first block of a stage downsamples)."""

    def __init__(self, widths, blocks, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stages.append(BasicBlock(c, w, 2 if (i > 0 and j == 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "cnn": lambda c, k: PlainCNN(c, k),
    # ResNet-8: one block per stage.
    "resnet": lambda c, k: ResNet((16, 32, 64), (1, 1, 1), c, k),
    # The same depth, 1.5x the width: the "wider" member of the zoo (cheap enough for 2 CPU cores).
    "wresnet": lambda c, k: ResNet((24, 48, 96), (1, 1, 1), c, k),
    "resnet18": lambda c, k: ResNet((64, 128, 256, 512), (2, 2, 2, 2), c, k),
    # Twelve 3x3 convs, narrow: [GK] read everything by depth decile, and twelve layers at depths
    # k/11 put at least one 3x3 conv in every decile (eleven at k/10 would not: float rounding
    # pushes 0.30000000000000004 into the next bin). Cheaper per image than "cnn".
    "deepcnn": lambda c, k: PlainCNN(c, k, (16,) * 4 + (32,) * 4 + (64,) * 4, pool_after=(3, 7)),
}
assert tuple(_BUILDERS) == ARCHITECTURES, "profiles.ARCHITECTURES must list the registry"

DESCRIPTIONS = {
    "cnn": "plain VGG-style CNN, 5 conv-BN layers (32-32-64-64-128)",
    "resnet": "ResNet-8 (widths 16-32-64)",
    "wresnet": "wide ResNet-8 (widths 24-48-96)",
    "resnet18": "ResNet-18 (widths 64-128-256-512)",
    "deepcnn": "deep narrow CNN, 12 conv-BN layers (4 × 16, 4 × 32, 4 × 64)",
}


def build_model(
    arch: str, in_channels: int = 1, num_classes: int = 10, seed: int | None = None
) -> nn.Module:
    """Architecture ``arch`` with PyTorch's default initialisation.

    With ``seed`` the initial weights are a function of (``seed``, ``arch``) alone: drawn inside
    :func:`robustlens.science.seeding.seeded`, so what ran earlier in the process does not matter, and a
    standard and a robust model of the same seed start from the same weights.
    """
    if arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(_BUILDERS)}")
    if seed is None:
        return _BUILDERS[arch](in_channels, num_classes)
    with seeding.seeded(seed, "init", arch):
        return _BUILDERS[arch](in_channels, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
