"""AW-Net against its static twin: forward and training-step time as ratios measured in one run.

Not a test: it prints a table and writes JSON (--out). Example:

    .venv/bin/python benchmarks/bench_awnet.py --arch cnn resnet --out benchmarks/measured/awnet_cpu.json

The static step is PGD-AT's (the attack included); AW-Net's is its own recipe (PGD against the
whole AW-Net, the clean and adversarial halves through the classifier with MixBN switched, the
two teachers' forward passes, the type loss). The teachers are untrained static models of the
same architecture: their cost, not their weights, matters here. Targets from the AW-Net issue:
forward <= 1.5x, training step <= 1.5x the static PGD-AT step. A third column times the static
model doing AW-Net's recipe (clean and adversarial halves, the teachers), so the last column is
what the dynamic architecture alone costs.
"""

from __future__ import annotations

import argparse
import json
import os

import pandas as pd

from robustlens.science import awnet, awnet_analysis, awnet_training, models, training
from robustlens.science.profiles import get_profile


def cost(arch, profile, shape=(1, 28, 28), device="cpu", batch_size=128, repeats=5):
    """AW-Net's cost table against its static twin (awnet_analysis.cost_table), with untrained
    teachers of the same architecture and the static model doing AW-Net's recipe."""
    static = models.build_model(arch, shape[0], 10, seed=0)
    net = awnet.build_awnet(arch, shape[0], 10, seed=0)
    teachers = [models.build_model(arch, shape[0], 10, seed=s).to(device) for s in (1, 2)]
    recipe = awnet_training.Recipe(awnet_training.settings(profile), *teachers)
    return awnet_analysis.cost_table(
        static,
        net,
        shape,
        training.make_recipe("pgd", profile),
        recipe,
        batch_size=batch_size,
        repeats=repeats,
        device=device,
        step_same_work=awnet_training.same_work_on(recipe),
    )


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["cnn"])
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 28, 28])
    parser.add_argument("--profile", default="cpu", help="eps and PGD steps come from this profile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    tables = {}
    for arch in args.arch:
        table = cost(arch, profile, tuple(args.shape), args.device, args.batch_size, args.repeats)
        tables[arch] = table
        print(
            f"\n{arch} ({args.device}, batch {args.batch_size}):\n{table.to_string()}", flush=True
        )
    if args.out:
        record = {
            "device": args.device,
            "profile": args.profile,
            "batch_size": args.batch_size,
            "targets": {"forward": 1.5, "training step": 1.5},
            "results": {a: t.to_dict() for a, t in tables.items()},
        }
        tmp = f"{args.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, args.out)
    return pd.concat(tables)


if __name__ == "__main__":
    main()
