"""Every random draw a result depends on is derived from its specification.

A model is its spec: the same spec gives the same weights in any process and in any order of
work. Each use of randomness (initial weights, data order, the random starts of training and
evaluation attacks) gets a seed of its own derived from the spec's seed and a purpose string, and
draws either from a dedicated :class:`torch.Generator` or inside :func:`seeded`, which forks the
global RNG so that nothing that ran earlier in the process, and nothing that runs later, can
change or be changed by it.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

import torch


def derive(seed: int, *purpose: object) -> int:
    """A 63-bit seed for ``purpose`` derived from ``seed`` (stable across processes and machines).

    Hashing (rather than ``seed + k``) keeps the streams of different purposes and seeds apart:
    seed 1's data order is not seed 0's initialisation.
    """
    text = "/".join([str(int(seed)), *map(str, purpose)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def generator(seed: int, *purpose: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh generator seeded with ``derive(seed, *purpose)``."""
    return torch.Generator(device=device).manual_seed(derive(seed, *purpose))


@contextmanager
def seeded(seed: int, *purpose: object, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the block with torch's global RNG (CPU, and the CUDA device in use) seeded from the spec.

    For code that draws from the global RNG and takes no generator (module initialisers,
    torchattacks' and AutoAttack's random starts). The RNG state outside the block is restored
    afterwards. On CUDA the block also runs with ``device`` as the current device, so code that
    seeds "the current device" (AutoAttack does) seeds the one it draws on; no other device's
    RNG is touched.
    """
    device = torch.device(device)
    value = derive(seed, *purpose)
    if device.type != "cuda":
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(value)
            yield
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.cuda.device(index), torch.random.fork_rng(devices=[index]):
        torch.random.default_generator.manual_seed(value)
        torch.cuda.manual_seed(value)
        yield
