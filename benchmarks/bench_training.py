"""Training throughput of every zoo recipe: images/s, ratio to standard training, and achieved
FLOP/s as a fraction of this machine's peak, all measured in the same run.

Not a test: it prints a table and writes JSON (--out). Examples:

    .venv/bin/python benchmarks/bench_training.py --arch cnn deepcnn --out benchmarks/measured/train_cpu.json
    python benchmarks/bench_training.py --arch resnet18 --shape 3 32 32 --device cuda --batches 20

FLOPs are counted, not estimated: one training step of each recipe runs under
``torch.utils.flop_counter.FlopCounterMode``, which counts the convolutions and matrix products
of the forward pass, of the attack's input-gradient passes and of the weight backward. The peak
is the best FLOP/s of a large conv and a large matrix product timed in the same run (float32),
so the fraction says how much of what this machine can do the training loop gets.

Random inputs in [0, 1] are used: throughput does not depend on the pixel values, and this lets
the benchmark run where no data set is installed (e.g. a GPU machine without CIFAR-10).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from robustlens.science import models, training
from robustlens.science.profiles import get_profile

RECIPES = [r for r in training.RECIPES if r != "awnet"]  # AW-Net: benchmarks/bench_awnet.py


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn, device: str, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def measured_peak(device: str, repeats: int = 5) -> dict:
    """FLOP/s of a large float32 conv (64->64 channels, 3x3, 32x32, batch 64) and a large
    matrix product, the best of ``repeats``: this machine's practical peak for the work
    training does."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 64, 32, 32, generator=g).to(device)
    w = torch.rand(64, 64, 3, 3, generator=g).to(device)
    n = 2048 if device == "cpu" else 8192
    a = torch.rand(n, n, generator=g).to(device)
    conv_flops = 2 * 64 * 64 * 32 * 32 * 64 * 9
    with torch.no_grad():
        conv = conv_flops / _best_seconds(lambda: F.conv2d(x, w, padding=1), device, repeats)
        mm = 2 * n**3 / _best_seconds(lambda: a @ a, device, repeats)
    return {"conv_flops_per_s": conv, "matmul_flops_per_s": mm, "peak_flops_per_s": max(conv, mm)}


# Passes of the forward pass's FLOPs per training step, where counting is impossible: a forward
# is 1, a backward 2 (data and weight gradients), an attack step's backward 1 (data only).
PASSES = {
    "standard": lambda k: 3,
    "pgd": lambda k: 2 * k + 3,
    "fast": lambda k: 5,
    "trades": lambda k: 2 * k + 7,
    "gradpen": lambda k: 6,
}


def step_flops(model, loss_fn, x, y, recipe: str, steps: int) -> tuple[int, str]:
    """FLOPs of one training step (loss, attack included, and its backward): counted where
    FlopCounterMode can follow the step; torch cannot count through the attacks' inner
    ``autograd.grad``, so those steps are the counted forward pass times :data:`PASSES`."""
    try:
        with FlopCounterMode(display=False) as counter:
            loss_fn(model, x, y).backward()
        model.zero_grad(set_to_none=True)
        return int(counter.get_total_flops()), "counted"
    except RuntimeError:
        model.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return int(counter.get_total_flops()) * PASSES[recipe](steps), "forward counted x passes"


def throughput(arch, recipe, shape, device, batch_size, batches, profile) -> tuple[float, int, str]:
    torch.manual_seed(0)
    model = models.build_model(arch, shape[0], 10).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    params = {"lam": 0.1, "norm": "l1"} if recipe == "gradpen" else {}
    loss_fn = training.make_recipe(recipe, profile, **params)
    x = torch.rand(batch_size, *shape, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    flops, how = step_flops(model, loss_fn, x, y, recipe, profile.pgd_train_steps)
    for i in range(batches + 2):  # two warm-up steps
        if i == 2:
            _sync(device)
            start = time.perf_counter()
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return batches * batch_size / (time.perf_counter() - start), flops, how


def machine(device: str) -> dict:
    out = {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["cnn", "deepcnn"])
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 28, 28])
    parser.add_argument("--profile", default="cpu", help="eps and PGD steps come from this profile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = set(args.recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipe(s) {sorted(unknown)}: choose from {', '.join(RECIPES)}")
    profile = get_profile(args.profile)
    peak = measured_peak(args.device)
    print(f"measured peak: {peak['peak_flops_per_s'] / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for arch in args.arch:
        ref = None
        for recipe in ["standard"] + [r for r in args.recipes if r != "standard"]:
            ips, flops, how = throughput(
                arch, recipe, args.shape, args.device, args.batch_size, args.batches, profile
            )
            ref = ips if recipe == "standard" else ref
            achieved = ips * flops / args.batch_size
            rows.append(
                {
                    "arch": arch,
                    "recipe": recipe,
                    "images_per_s": round(ips, 1),
                    "relative_to_standard": round(ips / ref, 3),
                    "gflop_per_image": round(flops / args.batch_size / 1e9, 4),
                    "achieved_gflop_per_s": round(achieved / 1e9, 2),
                    "fraction_of_peak": round(achieved / peak["peak_flops_per_s"], 3),
                    "flops": how,
                    "epoch_seconds_60k": round(60_000 / ips, 1),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        record = {
            "machine": machine(args.device),
            "profile": args.profile,
            "batch_size": args.batch_size,
            "shape": args.shape,
            "peak": peak,
            "results": rows,
        }
        tmp = f"{args.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, args.out)  # never a half-written result
    return table


if __name__ == "__main__":
    main()
