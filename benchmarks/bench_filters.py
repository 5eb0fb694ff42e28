"""Benchmark robustlens.science.filters against torchconvquality on a randomly initialised WideResNet-28-10.

Both libraries measure every 3x3 conv layer in the same run; the script checks that the values
agree where the definitions coincide and prints wall times and the speed ratio.

    PYTHONPATH=lib python benchmarks/bench_filters.py [--device cpu|cuda] [--repeats 3]

torchconvquality always runs on the CPU: its orthogonality subtracts a CPU ``torch.eye`` and so
fails on GPU weights.  robustlens runs on ``--device``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from robustlens.science import filters as F  # noqa: E402

TOL = 1e-5


def wide_resnet_28_10() -> torch.nn.Module:
    """robustbench's WRN-28-10 (random init).

    robustbench 1.1.1 imports ``autoattack``, which the ``pyautoattack`` distribution installs
    under the module name ``pyautoattack``: alias it (and the submodules robustbench uses).
    Where robustbench's other dependencies are missing, the architecture file (plain torch)
    is loaded on its own, without running robustbench's ``__init__``.
    """
    try:
        pyaa = importlib.import_module("pyautoattack")
        sys.modules.setdefault("autoattack", pyaa)
        for sub in ("autoattack", "state"):
            sys.modules.setdefault(
                f"autoattack.{sub}", importlib.import_module(f"pyautoattack.{sub}")
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from robustbench.model_zoo.architectures.wide_resnet import WideResNet
    except ImportError:
        spec = importlib.util.find_spec("robustbench")
        if spec is None:
            raise
        path = Path(spec.origin).parent / "model_zoo" / "architectures" / "wide_resnet.py"
        file_spec = importlib.util.spec_from_file_location("_rb_wide_resnet", path)
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        WideResNet = module.WideResNet
    return WideResNet(depth=28, widen_factor=10).eval()


def import_tcq():
    """torchconvquality imports distutils, gone from Python 3.12 unless setuptools provides it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module("torchconvquality")
        except ModuleNotFoundError as err:
            if err.name != "distutils":
                raise
            importlib.import_module("setuptools")
            return importlib.import_module("torchconvquality")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device: torch.device):
    """Result of the last call and the wall times of ``repeats`` calls (after one warm-up)."""
    out = fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return out, times


def ours(model: torch.nn.Module):
    records = F.extract_convs(model)
    tables = {v: F.metrics_table(records, "wrn-28-10", v) for v in ("cnn-filter-db", "raw")}
    return records, tables


def compare(records, tables, reference) -> int:
    """Count disagreements above TOL; print the largest deviation per metric."""
    pairs = {  # (our metric, our variant) -> torchconvquality key
        ("sparsity", "raw"): "sparsity",
        ("orthogonality", "raw"): "orthogonality",
        ("variance_entropy", "cnn-filter-db"): "variance_entropy",
        ("variance_entropy", "raw"): "variance_entropy_clean",
    }
    bad = 0
    for (metric, variant), key in pairs.items():
        t = tables[variant]
        ours_v = t[t.metric == metric].set_index("layer")["value"]
        dev = max(abs(ours_v[name] - reference[name][key]) for name in reference)
        bad += sum(abs(ours_v[name] - reference[name][key]) > TOL for name in reference)
        print(f"  {metric:17s} ({variant:13s}) vs tcq {key:23s} max |diff| = {dev:.2e}")
    print(f"  layers compared: {len(reference)} 3x3 layers, {len(records)} conv layers in total")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    tcq = import_tcq()

    torch.manual_seed(0)
    cpu_model = wide_resnet_28_10()
    model = cpu_model
    if device.type != "cpu":
        model = wide_resnet_28_10().to(device)
        model.load_state_dict(cpu_model.state_dict())
    n_params = sum(p.numel() for p in model.parameters())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"WRN-28-10: {n_params / 1e6:.1f}M parameters; robustlens on {where}, torchconvquality on cpu; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; repeats={args.repeats}"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, t_ref = timed(
            lambda: tcq.measure_quality(cpu_model), args.repeats, torch.device("cpu")
        )
    records, t_extract = timed(lambda: F.extract_convs(model), args.repeats, device)
    _, t_gk = timed(lambda: F.metrics_table(records, "wrn-28-10", "gk"), args.repeats, device)
    _, t_table = timed(lambda: F.filter_table(model, "wrn-28-10", "gk"), args.repeats, device)
    tables, t_two = timed(lambda: ours(model)[1], args.repeats, device)

    print(f"agreement where definitions coincide (tolerance {TOL:.0e}):")
    bad = compare(records, tables, reference)

    med = statistics.median
    print("wall times, median of repeats after one warm-up [s]:")
    rows = [
        ("torchconvquality.measure_quality (sparsity, 2 entropies, orthogonality)", t_ref),
        ("robustlens extract_convs (one hooked forward pass, batch 1)", t_extract),
        ("robustlens metrics_table, 'gk' (3x3 metrics + weight stats, 28 layers)", t_gk),
        ("robustlens filter_table, 'gk' (extraction + all metrics)", t_table),
        ("robustlens extraction + tables for 'cnn-filter-db' and 'raw'", t_two),
    ]
    for label, t in rows:
        print(f"  {label:74s} {med(t):9.4f}  (min {min(t):.4f})")
    print(
        f"speed ratio, torchconvquality / robustlens filter_table        : {med(t_ref) / med(t_table):7.1f}x"
    )
    print(
        f"speed ratio, torchconvquality / robustlens both tcq variants    : {med(t_ref) / med(t_two):7.1f}x"
    )
    print("disagreements above tolerance:", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
