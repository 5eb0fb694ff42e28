"""Every benchmark of the book in one run (``make bench``): one JSON of ratios measured side by
side in this run, and a table.

- filter metrics of a WRN-28-10: robustlens against torchconvquality (bench_filters.py);
- PGD: the evaluation suite's PGD against torchattacks' PGD on the same model and images;
- training throughput (standard, PGD-AT) as a fraction of the machine's measured peak
  (bench_training.py);
- AW-Net against its static twin: forward and training step (bench_awnet.py);
- a rebuild of the book when nothing changed: the runner's skip and Sphinx's incremental build.

Not a test: numbers depend on the machine, which the JSON records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torchattacks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_awnet  # noqa: E402
import bench_filters  # noqa: E402
import bench_training  # noqa: E402

from robustlens.science import (  # noqa: E402
    evaluation,
    models,
)
from robustlens.science import filters as F  # noqa: E402
from robustlens.science.profiles import get_profile  # noqa: E402


def filters_vs_torchconvquality(repeats: int) -> dict:
    tcq = bench_filters.import_tcq()
    torch.manual_seed(0)
    model = bench_filters.wide_resnet_28_10()
    cpu = torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, t_ref = bench_filters.timed(lambda: tcq.measure_quality(model), repeats, cpu)
    _, t_ours = bench_filters.timed(lambda: F.filter_table(model, "wrn", "gk"), repeats, cpu)
    ref, ours = statistics.median(t_ref), statistics.median(t_ours)
    return {"torchconvquality_s": ref, "robustlens_s": ours, "ratio": ref / ours}


def pgd_vs_torchattacks(n: int = 512, steps: int = 10, eps: float = 0.1) -> dict:
    torch.manual_seed(0)
    model = models.build_model("cnn", 1, 10, seed=0).eval()
    x = torch.rand(n, 1, 28, 28)
    with torch.no_grad():  # labels = the model's own answers: every image starts correct, so
        y = model(x).argmax(1)  # the suite's PGD (which skips wrong ones) attacks them all too
    alpha = 2.5 * eps / steps

    def theirs():
        attack = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
        for i in range(0, n, evaluation.DEFAULT_BATCH_SIZE):
            xb, yb = (
                x[i : i + evaluation.DEFAULT_BATCH_SIZE],
                y[i : i + evaluation.DEFAULT_BATCH_SIZE],
            )
            adv = attack(xb, yb)  # the attack needs gradients: outside no_grad
            with torch.no_grad():
                model(adv).argmax(1)

    def ours():
        evaluation.pgd_correct(model, x, y, eps, steps)

    t_theirs = bench_training._best_seconds(theirs, "cpu", 3)
    t_ours = bench_training._best_seconds(ours, "cpu", 3)
    return {
        "torchattacks_img_per_s": n / t_theirs,
        "robustlens_img_per_s": n / t_ours,
        "ratio": t_theirs / t_ours,
    }


def training_fraction_of_peak() -> dict:
    profile = get_profile("cpu")
    peak = bench_training.measured_peak("cpu")
    out = {"peak_gflop_per_s": peak["peak_flops_per_s"] / 1e9}
    for recipe in ("standard", "pgd"):
        ips, flops, _ = bench_training.throughput(
            "cnn", recipe, (1, 28, 28), "cpu", 128, 10, profile
        )
        achieved = ips * flops / 128
        out[recipe] = {
            "img_per_s": ips,
            "gflop_per_s": achieved / 1e9,
            "fraction_of_peak": achieved / peak["peak_flops_per_s"],
        }
    return out


def awnet_vs_static() -> dict:
    table = bench_awnet.cost("cnn", get_profile("cpu"))
    out = {row: float(table.loc[row, "AW-Net / static"]) for row in table.index}
    step = "training step (ms per batch)"
    out["training step / static doing AW-Net's recipe"] = float(
        table.loc[step, "AW-Net / same work"]
    )
    return out


def no_change_rebuild() -> dict:
    """The smoke book rebuilt twice; the second time nothing changed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = [sys.executable, "-m", "robustlens", "run", "--profile", "smoke"]
    subprocess.run(run, cwd=ROOT, env=env, capture_output=True, check=True)  # bring it up to date
    t0 = time.perf_counter()
    subprocess.run(run, cwd=ROOT, env=env, capture_output=True, check=True)
    t_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(["make", "-s", "html"], cwd=ROOT, env=env, capture_output=True, check=True)
    t_html = time.perf_counter() - t0
    return {"runner_skip_s": t_run, "html_incremental_s": t_html}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "bench.json"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-rebuild", action="store_true")
    args = parser.parse_args(argv)
    stages = {
        "filters_vs_torchconvquality": lambda: filters_vs_torchconvquality(args.repeats),
        "pgd_vs_torchattacks": pgd_vs_torchattacks,
        "training_fraction_of_peak": training_fraction_of_peak,
        "awnet_vs_static": awnet_vs_static,
    }
    if not args.skip_rebuild:
        stages["no_change_rebuild"] = no_change_rebuild
    results = {"machine": bench_training.machine("cpu")}
    for k, (name, stage) in enumerate(stages.items(), 1):
        t0 = time.perf_counter()
        print(f"[{k}/{len(stages)}] {name} ...", flush=True)  # a run takes minutes: show where
        results[name] = stage()
        print(f"[{k}/{len(stages)}] {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    t = results["training_fraction_of_peak"]
    rows = [
        (
            "filter metrics, WRN-28-10",
            "torchconvquality / robustlens time",
            results["filters_vs_torchconvquality"]["ratio"],
        ),
        (
            "PGD-10 on the plain CNN",
            "robustlens / torchattacks throughput",
            results["pgd_vs_torchattacks"]["ratio"],
        ),
        (
            "standard training, plain CNN",
            "achieved / peak FLOP/s",
            t["standard"]["fraction_of_peak"],
        ),
        ("PGD-AT training, plain CNN", "achieved / peak FLOP/s", t["pgd"]["fraction_of_peak"]),
        (
            "AW-Net forward",
            "AW-Net / static time",
            results["awnet_vs_static"]["forward (ms per batch)"],
        ),
        (
            "AW-Net training step",
            "AW-Net / static PGD-AT time",
            results["awnet_vs_static"]["training step (ms per batch)"],
        ),
        (
            "AW-Net training step",
            "AW-Net / static doing AW-Net's recipe",
            results["awnet_vs_static"]["training step / static doing AW-Net's recipe"],
        ),
    ]
    if "no_change_rebuild" in results:
        r = results["no_change_rebuild"]
        rows.append(
            (
                "book rebuild, nothing changed",
                "seconds (runner + html)",
                r["runner_skip_s"] + r["html_incremental_s"],
            )
        )
    print(f"{'benchmark':34s} {'measure':38s} {'value':>8s}")
    for name, measure, value in rows:
        print(f"{name:34s} {measure:38s} {value:8.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
