"""Which architecture a RobustBench id names: parsing ids and reading robustbench's registry.

Kept apart from :mod:`robustlens.outside.robustbench_zoo` (which loads checkpoints through
:mod:`robustlens.outside.checkpoints`) so that ``checkpoints`` can build a RobustBench
architecture without importing the loader that imports it: no import circle.
"""

from __future__ import annotations

import difflib

from torch import nn

from robustlens.outside.robustbench_compat import import_robustbench

DATASETS = ("cifar10", "cifar100", "imagenet")
THREATS = ("Linf", "L2", "corruptions", "corruptions_3d")


class RobustBenchError(RuntimeError):
    """A RobustBench model cannot be loaded; the one-line message names the cause and the fix."""


def parse_model_id(model_id: str) -> tuple[str, str, str]:
    """``"cifar10/Linf/Carmon2019Unlabeled"`` -> ``("cifar10", "Linf", "Carmon2019Unlabeled")`` (case-tolerant)."""
    parts = str(model_id).strip().split("/")
    if len(parts) != 3 or not all(parts):
        raise RobustBenchError(
            f"{model_id!r} is not a RobustBench id: write dataset/threat/name, "
            f"e.g. 'cifar10/Linf/Carmon2019Unlabeled'"
        )
    dataset, threat, name = parts
    ds = {d.lower(): d for d in DATASETS}.get(dataset.lower())
    tm = {t.lower(): t for t in THREATS}.get(threat.lower())
    if ds is None:
        raise RobustBenchError(
            f"{model_id!r}: unknown dataset {dataset!r}; RobustBench has {', '.join(DATASETS)}"
        )
    if tm is None:
        raise RobustBenchError(
            f"{model_id!r}: unknown threat model {threat!r}; RobustBench has {', '.join(THREATS)}"
        )
    return ds, tm, name


def _registry(dataset: str, threat: str) -> dict:
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    return model_dicts[BenchmarkDataset(dataset)].get(ThreatModel(threat.replace("_3d", "")), {})


def registered_names(dataset: str, threat: str) -> list[str]:
    """The model names robustbench 1.1.1 knows for ``dataset``/``threat`` (its ``model_zoo`` registry)."""
    return list(_registry(dataset, threat))


def timm_name(dataset: str, threat: str, name: str) -> str | None:
    """The timm model that ``load_model`` would use instead of a Google Drive checkpoint, if any."""
    import timm

    candidate = f"{name.lower().replace('-', '_')}_{dataset}_{threat.replace('_3d', '').lower()}"
    return candidate if timm.is_model(candidate) else None


def registry_entry(model_id: str) -> tuple[str, str, str, dict | None]:
    dataset, threat, name = parse_model_id(model_id)
    reg = _registry(dataset, threat)
    if name in reg:
        return dataset, threat, name, reg[name]
    if timm_name(dataset, threat, name):
        return dataset, threat, name, None
    close = difflib.get_close_matches(name, list(reg), n=3, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(close)}?"
        if close
        else f"see robustlens.outside.robustbench_registry.registered_names({dataset!r}, {threat!r})"
    )
    raise RobustBenchError(
        f"{model_id!r} is not in RobustBench 1.1.1's model zoo ({len(reg)} {dataset}/{threat} "
        f"models): {hint}"
    )


def build_architecture(model_id: str) -> nn.Module:
    """The registered architecture of ``model_id`` with fresh random weights (nothing is downloaded)."""
    dataset, threat, name, entry = registry_entry(model_id)
    if entry is None:
        raise RobustBenchError(
            f"{model_id!r} is a timm-hosted model: build it with timm.create_model("
            f"{timm_name(dataset, threat, name)!r})"
        )
    return entry["model"]()
