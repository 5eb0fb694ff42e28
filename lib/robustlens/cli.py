"""Command-line entry points: ``python -m robustlens {run,fetch-data,train,profiles} ...``.

Every known failure (bad profile or parameter, missing or corrupt data, corrupt cache entry,
bad checkpoint) ends in one line on stderr and exit status 2, before any long compute.
"""
from __future__ import annotations

import argparse
import sys

from . import profiles

EXIT_BAD_INPUT = 2


def _known_errors() -> tuple[type[BaseException], ...]:
    from . import cache, data, runner

    errors: list[type[BaseException]] = [profiles.ProfileError, data.DataError, cache.CacheError,
                                         runner.NotebookFailed, ValueError, FileNotFoundError]
    for module, name in (("checkpoints", "CheckpointError"), ("robustbench_zoo", "RobustBenchError")):
        try:
            mod = __import__(f"{__package__}.{module}", fromlist=[name])
            errors.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise profiles.ProfileError(f"override {pair!r} is not KEY=VALUE (e.g. eps=0.05)")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_fetch_data(args) -> int:
    from . import data

    if args.dataset == "fashion-mnist":
        data.load_fashion_mnist(data.fetch_fashion_mnist(use_apt=not args.no_apt))
    else:
        data.fetch_cifar10(args.root)
        data.load_cifar10(args.root)
    print(f"{args.dataset}: ready")
    return 0


def cmd_train(args) -> int:
    from . import zoo

    profile = profiles.get_profile(args.profile, **_parse_overrides(args.set))
    device = zoo.resolve_device(args.device)
    entry = zoo.get(profile, args.arch, args.recipe, args.seed, device=device)
    m = entry.metrics
    print(f"{entry.label} [{profile.name}]: clean {m['clean_acc']:.2%}, PGD-{m['eval_steps']} "
          f"(eps={m['eval_eps']:.4g}) {m['pgd_acc']:.2%} on {m['n_eval']} test images; cache key {entry.key}")
    return 0


def cmd_profiles(args) -> int:
    for name in profiles.PROFILE_NAMES:
        print(profiles.get_profile(name).describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m robustlens", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="execute the book's notebooks with papermill (skips unchanged ones)")
    p.add_argument("--profile", default="cpu", help="smoke, cpu (default) or paper")
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true")
    p.add_argument("notebooks", nargs="*")
    p.set_defaults(func=lambda a: __import__(f"{__package__}.runner", fromlist=["main"]).main(
        ["--profile", a.profile, "--device", a.device, *(["--force"] if a.force else []), *a.notebooks]))

    p = sub.add_parser("fetch-data", help="make a data set available (Fashion-MNIST offline via Debian)")
    p.add_argument("dataset", nargs="?", default="fashion-mnist", choices=["fashion-mnist", "cifar10"])
    p.add_argument("--root", default=None, help="CIFAR-10 data folder (default: $ROBUSTLENS_DATA)")
    p.add_argument("--no-apt", action="store_true", help="do not try the Debian package")
    p.set_defaults(func=cmd_fetch_data)

    p = sub.add_parser("train", help="train (or fetch from the cache) one model of the zoo")
    p.add_argument("arch")
    p.add_argument("recipe")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides, e.g. eps=0.05")
    p.set_defaults(func=cmd_train)

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
