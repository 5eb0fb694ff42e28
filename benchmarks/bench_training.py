"""Training throughput of every zoo recipe, as a ratio to standard training measured in the same run.

Not a test: it prints a table (and writes CSV with --out). Example:

    .venv/bin/python benchmarks/bench_training.py --arch cnn resnet wresnet --shape 1 28 28
    python benchmarks/bench_training.py --arch resnet18 --shape 3 32 32 --device cuda --batches 20

Random inputs in [0, 1] are used: throughput does not depend on the pixel values, and this lets
the benchmark run where no data set is installed (e.g. a GPU machine without CIFAR-10).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from robustlens.science import models, training
from robustlens.science.profiles import get_profile


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput(
    arch: str, recipe: str, shape, device: str, batch_size: int, batches: int, profile
) -> float:
    torch.manual_seed(0)
    model = models.build_model(arch, shape[0], 10).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    params = {"lam": 0.1, "norm": "l1"} if recipe == "gradpen" else {}
    loss_fn = training.make_recipe(recipe, profile, **params)
    x = torch.rand(batch_size, *shape, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    for i in range(batches + 2):  # two warm-up steps
        if i == 2:
            _sync(device)
            start = time.perf_counter()
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return batches * batch_size / (time.perf_counter() - start)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["cnn", "resnet", "wresnet"])
    parser.add_argument("--recipes", nargs="+", default=list(training.RECIPES))
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 28, 28])
    parser.add_argument("--profile", default="cpu", help="eps and PGD steps come from this profile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    rows = []
    for arch in args.arch:
        ref = None
        for recipe in ["standard"] + [r for r in args.recipes if r != "standard"]:
            ips = throughput(
                arch, recipe, args.shape, args.device, args.batch_size, args.batches, profile
            )
            ref = ips if recipe == "standard" else ref
            rows.append(
                {
                    "arch": arch,
                    "recipe": recipe,
                    "device": args.device,
                    "images_per_s": round(ips, 1),
                    "relative_to_standard": round(ips / ref, 3),
                    "epoch_seconds_50k": round(50_000 / ips, 1),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
