"""Load PyTorch checkpoints safely, with one clear line when a file is not what it should be.

Every file is read with ``torch.load(..., map_location="cpu", weights_only=True)``: tensors and
plain containers only, never arbitrary pickled code. Before that, :func:`sniff_checkpoint` looks at
the first bytes, because the usual failures are not subtle: an interrupted download leaves an empty
or truncated file, and Google Drive answers a quota or virus-scan warning with an HTML page that
older download helpers saved under the ``.pt`` name (RobustBench issues #72, #81, #158).

:func:`load_pyautoattack_resnet18` returns the small, trained, normally trained CIFAR-10 ResNet-18
that the ``pyautoattack`` wheel ships as its example model: a real trained network available
offline, handy for tests and for a quick look at "normal" filters.
"""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Union

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "load_into",
    "sniff_checkpoint",
    "read_checkpoint",
    "extract_state_dict",
    "load_checkpoint",
    "pyautoattack_resnet18_path",
    "load_pyautoattack_resnet18",
]

ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6 (and TorchScript archives)
PICKLE_PROTO = 0x80  # torch.save's legacy format starts with a pickle protocol opcode
# Keys under which training scripts commonly nest the weights, tried in this order.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")

Arch = Union[nn.Module, Callable[[], nn.Module], str, None]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, empty, HTML, truncated, unsafe or does not fit; the message says the fix."""


def _fix(fix: str | None) -> str:
    return fix or "delete it and download or save it again"


def sniff_checkpoint(path: Path | str, fix: str | None = None) -> str:
    """Check the first bytes of ``path``; return ``"zip"`` or ``"legacy"`` or raise :class:`CheckpointError`.

    ``fix`` replaces the generic advice in the error message (callers know where the file comes from).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: {_fix(fix)}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes; an interrupted download?): {_fix(fix)}")
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or (
        text.startswith(b"<") and b"<html" in text
    ):
        raise CheckpointError(
            f"{path} is an HTML page ({size} bytes), not a checkpoint: a failed download "
            f"(e.g. Google Drive's quota or virus-scan page) was saved under this name; "
            f"{_fix(fix)}"
        )
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):  # the zip directory sits at the end: a cut file has none
            raise CheckpointError(
                f"{path} is truncated ({size} bytes, the zip archive has no end): {_fix(fix)}"
            )
        return "zip"
    if head[0] == PICKLE_PROTO:
        return "legacy"
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint (it starts with {head[:16]!r}): {_fix(fix)}"
    )


def read_checkpoint(path: Path | str, fix: str | None = None, mmap: bool = False):
    """``torch.load(path, map_location="cpu", weights_only=True)`` after :func:`sniff_checkpoint`, errors in one line.

    ``mmap=True`` memory-maps zip-format files (cheap validation of big files); legacy files are read whole.
    """
    path = Path(path)
    kind = sniff_checkpoint(path, fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and kind == "zip")
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise CheckpointError(
                f"{path} holds Python objects besides tensors, which torch.load(weights_only=True) refuses "
                f"to unpickle (it may be a whole pickled model): only if you trust its source, load it "
                f"yourself without the weights-only restriction and re-save model.state_dict()"
            ) from None
        raise CheckpointError(f"{path} is corrupt ({exc}): {_fix(fix)}") from None
    except (EOFError, RuntimeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is truncated or corrupt ({first[:120]}): {_fix(fix)}"
        ) from None


def extract_state_dict(obj, source: str = "checkpoint") -> "OrderedDict[str, torch.Tensor]":
    """The flat name -> tensor mapping inside a loaded checkpoint.

    Unwraps ``{"state_dict": ...}``, ``{"model_state_dict": ...}``, ``{"model": ...}``, ``{"net": ...}``,
    ``{"network": ...}`` (repeatedly) and removes the ``module.`` prefix that ``nn.DataParallel`` and
    DistributedDataParallel put on every key.
    """
    for _ in range(4):
        if not isinstance(obj, dict) or _is_flat_state_dict(obj):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not _is_flat_state_dict(obj):
        keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{source} holds no state dict (found {keys}); expected name -> tensor pairs, "
            f"possibly under one of {', '.join(WRAPPER_KEYS)}"
        )
    if obj and all(k.startswith("module.") for k in obj):
        obj = OrderedDict((k[len("module.") :], v) for k, v in obj.items())
    return OrderedDict(obj)


def _is_flat_state_dict(obj: dict) -> bool:
    return len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _build(arch: Arch) -> nn.Module:
    if isinstance(arch, nn.Module):
        return arch
    if isinstance(arch, str):  # a RobustBench id such as "cifar10/Linf/Carmon2019Unlabeled"
        from robustlens.outside.robustbench_registry import build_architecture

        return build_architecture(arch)
    if callable(arch):
        model = arch()
        if not isinstance(model, nn.Module):
            raise TypeError(f"arch() returned {type(model).__name__}, not an nn.Module")
        return model
    raise TypeError(
        f"arch must be an nn.Module, a zero-argument factory or a RobustBench id, not {type(arch).__name__}"
    )


def load_into(model: nn.Module, state_dict: dict, source: str = "checkpoint") -> nn.Module:
    """``model.load_state_dict(state_dict, strict=True)`` with a short message naming the mismatching keys."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError:
        own = model.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        shapes = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
        parts = [
            f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", shapes),
            )
            if keys
        ]
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}: {'; '.join(parts) or 'load_state_dict failed'}"
            f" -- wrong architecture for this file, or the wrong file"
        ) from None
    return model


def load_checkpoint(path: Path | str, arch: Arch = None) -> nn.Module | OrderedDict:
    """Load the state dict in ``path`` safely; with ``arch``, load it strictly into that model and return it in eval mode.

    ``arch`` may be an ``nn.Module``, a zero-argument factory (e.g. a model class) or a RobustBench id
    (its architecture, built with random weights). Without ``arch`` the unwrapped state dict is returned.
    """
    state_dict = extract_state_dict(read_checkpoint(path), source=str(path))
    if arch is None:
        return state_dict
    return load_into(_build(arch), state_dict, source=str(path)).eval()


# ----------------------------------------------------------------------------- pyautoattack's example model


def pyautoattack_resnet18_path() -> Path:
    """Where the installed ``pyautoattack`` keeps ``examples/model_test.pt`` (a trained CIFAR-10 ResNet-18)."""
    spec = importlib.util.find_spec("pyautoattack")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("pyautoattack is not installed: pip install pyautoattack==0.2.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "examples" / "model_test.pt"
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing from the pyautoattack install: pip install --force-reinstall "
            f"pyautoattack==0.2.0"
        )
    return path


def load_pyautoattack_resnet18(device: str = "cpu") -> nn.Module:
    """The normally trained CIFAR-10 ResNet-18 shipped with pyautoattack, as an eval-mode ``nn.Module``.

    Its keys match RobustBench's ``model_zoo.architectures.resnet.ResNet18`` (the 3x3-stem CIFAR
    ResNet-18 with a ``linear`` head) exactly. It takes images in [0, 1] without normalisation.
    """
    from robustlens.outside.robustbench_compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo.architectures.resnet import ResNet18

    path = pyautoattack_resnet18_path()
    fix = "pip install --force-reinstall pyautoattack==0.2.0"
    model = load_into(
        ResNet18(), extract_state_dict(read_checkpoint(path, fix), str(path)), str(path)
    )
    return model.to(device).eval()
