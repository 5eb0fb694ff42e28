"""Command-line entry points: ``python -m robustlens {run,fetch-data,train,profiles} ...``.

Every known failure (bad profile or parameter, missing or corrupt data, corrupt cache entry,
bad checkpoint) ends in one line on stderr and exit status 2, before any long compute.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from robustlens.science import profiles

EXIT_BAD_INPUT = 2


def cache_root_check() -> None:
    """A result cache that is a file or read-only is refused before any training starts."""
    from robustlens.science import cache

    cache.check_root()


def _known_errors() -> tuple[type[BaseException], ...]:
    from robustlens.book import runner
    from robustlens.science import cache, data

    errors: list[type[BaseException]] = [
        profiles.ProfileError,
        data.DataError,
        cache.CacheError,
        runner.NotebookFailed,
        ValueError,
        FileNotFoundError,
    ]
    for module, name in (
        ("checkpoints", "CheckpointError"),
        ("robustbench_registry", "RobustBenchError"),
        ("robustbench_compat", "RobustBenchImportError"),
    ):
        try:
            mod = __import__(f"{__package__}.outside.{module}", fromlist=[name])
            errors.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def cmd_fetch_data(args) -> int:
    from robustlens.science import data

    if args.dataset == "fashion-mnist":
        data.load_fashion_mnist(data.fetch_fashion_mnist(use_apt=not args.no_apt))
    else:
        data.fetch_cifar10(args.root)
        data.load_cifar10(args.root)
    print(f"{args.dataset}: ready")
    return 0


def _value(text: str):
    """A recipe parameter from the command line: a number, true/false, a comma list, or text."""
    if "," in text:
        return [_value(t) for t in text.split(",")]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_recipe_params(items: list[str]) -> dict:
    """``["loss=ce", "signal_range=0,3"]`` -> ``{"loss": "ce", "signal_range": [0, 3]}``."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: write KEY=VALUE, e.g. --param loss=ce")
        out[key] = _value(text)
    return out


def cmd_train(args) -> int:
    from robustlens.science import zoo

    profile = profiles.get_profile(args.profile, **profiles.parse_overrides(args.set))
    device = zoo.resolve_device(args.device)
    cache_root_check()
    params = parse_recipe_params(args.param)  # zoo.get checks them (make_spec) before compute
    entry = zoo.get(profile, args.arch, args.recipe, args.seed, device=device, **params)
    m = entry.metrics
    print(
        f"{entry.label} [{profile.name}]: clean {m['clean_acc']:.2%}, PGD-{m['eval_steps']} "
        f"(eps={m['eval_eps']:.4g}) {m['pgd_acc']:.2%} on {m['n_eval']} test images; cache key {entry.key}"
    )
    return 0


def cmd_zoo(args) -> int:
    """Train (or find in the cache) every model the notebooks use at a profile (the zoo, chapter
    04's sweeps, chapter 05's AW-Nets), and print the zoo's accuracy."""
    from robustlens.science import zoo, zoo_jobs

    overrides = profiles.parse_overrides(args.set)
    profile = profiles.get_profile(args.profile, **overrides)
    device = zoo.resolve_device(args.device)
    cache_root_check()
    if args.jobs > 1 or args.executor != "local":
        _fan_out(args, overrides, device)
    else:  # one model after another, in this process, in dependency order
        for job in sorted(zoo_jobs.plan(args.profile, device, **overrides), key=lambda j: j.wave):
            job()
    entries = zoo.get_many(
        profile,
        profile.architectures,
        profile.recipes,
        profile.seeds,
        device=device,
        eval_size=profile.zoo_test_size,
    )
    table = zoo.metrics_table(entries)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _fan_out(args, overrides: dict, device: str) -> None:
    """Train the zoo's missing models as parallel jobs; the caller then only reads the cache."""
    from robustlens.science import zoo_jobs

    todo = zoo_jobs.pending(zoo_jobs.plan(args.profile, device, **overrides))
    print(f"{len(todo)} model(s) to train, as {args.executor} jobs", flush=True)
    slurm = {
        k: v
        for k, v in (
            ("slurm_partition", args.slurm_partition),
            ("gpus_per_node", args.gpus_per_node),
            ("cpus_per_task", args.cpus_per_task),
        )
        if v is not None
    }
    cluster = "local" if args.executor == "submitit-local" else "slurm"
    for wave in sorted({j.wave for j in todo}):  # a wave's models need the previous waves'
        jobs = [j for j in todo if j.wave == wave]
        if args.executor == "local":
            results = zoo_jobs.run_local(jobs, args.jobs)
        else:
            results = zoo_jobs.run_submitit(
                jobs, args.log_folder, cluster, args.timeout_min, **slurm
            )
        for r in results:
            print(f"  {r['label']}: {r['seconds']:.0f} s{' (cached)' if r['cached'] else ''}")


def cmd_filters(args) -> int:
    """Filter metrics of one model as a tidy CSV (or Parquet), plus a short summary."""
    from pathlib import Path

    from robustlens.outside import model_sources
    from robustlens.science import filters, zoo

    device = zoo.resolve_device(args.device)
    cache_root_check()
    if args.output and args.output.endswith(".parquet"):
        import importlib.util

        if not (importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet")):
            raise ValueError(
                "writing .parquet needs pyarrow (pip install pyarrow): or give a .csv output"
            )
    model, shape = model_sources.resolve(
        args.model, arch=args.arch, device=device, robustbench_dir=args.robustbench_dir
    )
    name = args.name or args.model
    table = filters.filter_table(
        model, name, variant=args.variant, fold_bn=args.fold_bn, input_shape=shape
    )
    out = (
        Path(args.output)
        if args.output
        else Path(re.sub(r"[^\w.-]+", "_", name).strip("_") + ".filters.csv")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    else:
        table.to_csv(tmp, index=False)
    os.replace(tmp, out)  # never leave a half-written table under the real name
    summary = (
        table[table.metric.isin(["sparsity", "variance_entropy", "orthogonality", "weight_std"])]
        .groupby("metric")["value"]
        .agg(["mean", "min", "max"])
    )
    n_layers = table["layer"].nunique()
    print(
        f"{name}: {n_layers} conv layers, variant {args.variant}, fold_bn={args.fold_bn} -> {out}"
    )
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_profiles(args) -> int:
    for name in profiles.PROFILE_NAMES:
        print(profiles.get_profile(name).describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m robustlens", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run", help="execute the book's notebooks with papermill (skips unchanged ones)"
    )
    p.add_argument(
        "--profile",
        default="cpu",
        help="smoke, cpu (default), cpu4 (cpu with the seeds its verdicts need) or paper",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one profile value for this run, e.g. -p eps=0.2 -p seeds=0,1,2",
    )
    p.add_argument("notebooks", nargs="*")
    p.set_defaults(
        func=lambda a: __import__(f"{__package__}.book.runner", fromlist=["main"]).main(
            [
                "--profile",
                a.profile,
                "--device",
                a.device,
                *(["--force"] if a.force else []),
                *[f"--param={kv}" for kv in a.param],
                *a.notebooks,
            ]
        )
    )

    p = sub.add_parser(
        "fetch-data", help="make a data set available (Fashion-MNIST offline via Debian)"
    )
    p.add_argument(
        "dataset", nargs="?", default="fashion-mnist", choices=["fashion-mnist", "cifar10"]
    )
    p.add_argument("--root", default=None, help="CIFAR-10 data folder (default: $ROBUSTLENS_DATA)")
    p.add_argument("--no-apt", action="store_true", help="do not try the Debian package")
    p.set_defaults(func=cmd_fetch_data)

    p = sub.add_parser("train", help="train (or fetch from the cache) one model of the zoo")
    p.add_argument("arch")
    p.add_argument("recipe")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides, e.g. eps=0.05"
    )
    p.add_argument(
        "--param",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="the recipe's own parameters, e.g. (awnet) loss=ce signal_range=0,3",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("zoo", help="train (or find cached) every zoo model of a profile")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many models at once (local processes sharing the cores)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "submitit-local", "slurm"),
        default="local",
        help="where the jobs run: local processes, or one submitit job per model",
    )
    p.add_argument("--log-folder", default="_build/zoo-jobs", help="submitit's logs")
    p.add_argument("--timeout-min", type=int, default=240, help="per-job limit (submitit)")
    p.add_argument("--slurm-partition")
    p.add_argument("--gpus-per-node", type=int)
    p.add_argument("--cpus-per-task", type=int)
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("filters", help="filter metrics of a model as a tidy table")
    p.add_argument(
        "model",
        help="checkpoint file (with --arch), zoo:<profile>/<arch>/<recipe>[/seed<k>], "
        "a RobustBench id (cifar10/Linf/Carmon2019Unlabeled) or pyautoattack/resnet18",
    )
    p.add_argument(
        "--arch",
        default=None,
        help="architecture of a bare checkpoint: cnn, resnet, wresnet, "
        "resnet18 or a RobustBench id",
    )
    p.add_argument("--variant", default="gk", choices=["gk", "cnn-filter-db", "raw"])
    p.add_argument(
        "--fold-bn", action="store_true", help="fold eval-mode BatchNorm into the conv first"
    )
    p.add_argument("--output", "-o", default=None, help="output .csv or .parquet")
    p.add_argument("--name", default=None, help="model name in the table (default: MODEL)")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--robustbench-dir",
        default=None,
        help="RobustBench model_dir (default: $ROBUSTLENS_ROBUSTBENCH_DIR)",
    )
    p.set_defaults(func=cmd_filters)

    p = sub.add_parser("profiles", help="list the profiles")
    p.set_defaults(func=cmd_profiles)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _known_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
