"""Turn the MODEL argument of the command line into a model: a checkpoint file, a model of the
book's own zoo, a RobustBench id, or the standard ResNet-18 that pyautoattack ships."""

from __future__ import annotations

import os
import re
from pathlib import Path

from torch import nn

from robustlens.science import data, models
from robustlens.science.profiles import get_profile

PYAUTOATTACK = "pyautoattack/resnet18"
# zoo:<profile>/<arch>/<recipe>[/seed<k>], e.g. zoo:cpu/cnn/pgd/seed0
_ZOO = re.compile(
    r"^zoo:(?P<profile>[\w-]+)/(?P<arch>[\w-]+)/(?P<recipe>[\w-]+)(?:/seed(?P<seed>\d+))?$"
)
_RB = re.compile(
    r"^(?P<dataset>cifar10|cifar100|imagenet)/(?P<threat>[\w]+)/(?P<name>[\w\-.]+)$", re.I
)


def default_robustbench_dir() -> Path:
    return Path(
        os.environ.get(
            "ROBUSTLENS_ROBUSTBENCH_DIR", Path.home() / ".cache" / "robustlens" / "robustbench"
        )
    )


def resolve(
    spec: str, arch: str | None = None, device: str = "cpu", robustbench_dir: Path | None = None
) -> tuple[nn.Module, tuple[int, ...]]:
    """(model in eval mode, batch-of-one input shape) for ``spec``; errors are one line with the fix."""
    if spec == PYAUTOATTACK:
        from robustlens.outside.checkpoints import load_pyautoattack_resnet18

        return load_pyautoattack_resnet18(device), (1, 3, 32, 32)
    m = _ZOO.match(spec)
    if m:
        from robustlens.science import zoo

        profile = get_profile(m["profile"])
        entry = zoo.get(profile, m["arch"], m["recipe"], int(m["seed"] or 0), device=device)
        return entry.model, entry.input_shape
    path = Path(spec)
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin") or path.exists():
        from robustlens.outside.checkpoints import CheckpointError, load_checkpoint

        if not path.is_file():
            raise CheckpointError(f"{path} does not exist: give the path of a checkpoint file")
        if arch is None:
            raise ValueError(
                f"{path} is a bare checkpoint: say which architecture it holds with --arch "
                f"({', '.join(models.DESCRIPTIONS)} or a RobustBench id)"
            )
        if arch in models.DESCRIPTIONS:
            # The book's own architectures: infer the input channels from the first conv weight.
            state = load_checkpoint(path)
            first = next(v for k, v in state.items() if v.ndim == 4)
            model = models.build_model(arch, first.shape[1], 10)
            model = load_checkpoint(path, lambda: model)
            shape = (1, *data.IMAGE_SHAPES["fashion-mnist" if first.shape[1] == 1 else "cifar10"])
        else:
            model = load_checkpoint(path, arch)
            shape = (1, 3, 224, 224) if arch.lower().startswith("imagenet") else (1, 3, 32, 32)
        return model.to(device).eval(), shape
    m = _RB.match(spec)
    if m:
        from robustlens.outside.robustbench_zoo import load_robustbench

        model = load_robustbench(spec, robustbench_dir or default_robustbench_dir(), device=device)
        shape = (1, 3, 224, 224) if m["dataset"].lower() == "imagenet" else (1, 3, 32, 32)
        return model, shape
    raise ValueError(
        f"cannot tell what {spec!r} is: give a checkpoint file (with --arch), "
        f"zoo:<profile>/<arch>/<recipe>[/seed<k>], a RobustBench id such as "
        f"cifar10/Linf/Carmon2019Unlabeled, or {PYAUTOATTACK}"
    )
