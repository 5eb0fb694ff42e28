"""Training the zoo in parallel: one job per model, in local processes or through submitit.

Every job trains one model with :func:`robustlens.science.zoo.get` and writes it into the shared
content-addressed cache, so jobs need no coordination: two jobs that race for the same key
compute the same result and :meth:`robustlens.science.cache.Cache.put` keeps the first. A job
whose model is already cached does nothing; the notebooks then only read.

On a Slurm cluster the cache must be on a file system every node sees (set
``ROBUSTLENS_CACHE``); the whole zoo then trains in the time of its slowest model.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from robustlens.science import cache, profiles

EXECUTORS = ("local", "submitit-local", "slurm")


@dataclass(frozen=True)
class ZooJob:
    """One model of a profile's zoo; calling it trains the model (or finds it in the cache)."""

    profile: str
    arch: str
    recipe: str
    seed: int
    device: str = "auto"
    overrides: dict = field(default_factory=dict)  # profile values (e.g. a sweep's eps)
    threads: int | None = None
    params: dict = field(default_factory=dict)  # the recipe's own (lam, norm, AW-Net options)
    wave: int = 0  # jobs of wave k+1 need models of wave k (AW-Net needs its teachers)

    @property
    def label(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in sorted({**self.overrides, **self.params}.items()))
        return f"{self.arch}/{self.recipe}{extra}/seed{self.seed}"

    def key(self) -> str:
        from robustlens.science import zoo

        p = profiles.get_profile(self.profile, **self.overrides)
        return zoo.model_key(zoo.make_spec(p, self.arch, self.recipe, self.seed, **self.params))

    def __call__(self) -> dict:
        import torch

        from robustlens.science import zoo

        if self.threads:
            # Jobs sharing one machine split its cores; torch's default would oversubscribe them.
            torch.set_num_threads(self.threads)
        p = profiles.get_profile(self.profile, **self.overrides)
        was_cached = cache.Cache().has("models", self.key())
        start = time.perf_counter()
        entry = zoo.get(p, self.arch, self.recipe, self.seed, device=self.device, **self.params)
        return {
            "label": self.label,
            "key": entry.key,
            "cached": was_cached,
            "seconds": time.perf_counter() - start,
            "clean_acc": entry.metrics["clean_acc"],
        }


def plan(profile: str, device: str = "auto", **overrides) -> list[ZooJob]:
    """Every model the notebooks train at ``profile``, as jobs: the zoo (architectures ×
    recipes × seeds), chapter 04's static family (:func:`robustlens.science.zoo.static_family`)
    and, in a second wave, chapter 05's AW-Net and its ablations (they distil from zoo models)."""
    from robustlens.science import awnet_training

    p = profiles.get_profile(profile, **overrides)

    def job(arch, recipe, seed, extra=None, wave=0, **params):
        return ZooJob(
            profile,
            arch,
            recipe,
            seed,
            device,
            {**overrides, **(extra or {})},
            params=params,
            wave=wave,
        )

    jobs = [job(a, r, s) for a in p.architectures for r in p.recipes for s in p.seeds]
    seed = p.seeds[0]
    jobs += [job(p.arch, "standard", seed), job(p.arch, "pgd", seed)]
    jobs += [job(p.arch, "pgd", seed, {"eps": e}) for e in sorted(p.at_eps_sweep)]
    jobs += [job(p.arch, "gradpen", seed, lam=lam, norm="l1") for lam in sorted(p.gradpen_l1_lams)]
    jobs += [
        job(p.arch, "gradpen", seed, lam=lam, norm="l2sq") for lam in sorted(p.gradpen_l2sq_lams)
    ]
    jobs += [job(p.arch, "awnet", seed, wave=1)]
    jobs += [
        job(p.arch, "awnet", seed, wave=1, **awnet_training.ABLATIONS[name])
        for name in p.awnet_ablations
    ]
    unique, seen = [], set()
    for j in jobs:  # one job per model: the sweep may repeat the reference eps
        if j.key() not in seen:
            seen.add(j.key())
            unique.append(j)
    return unique


def pending(jobs: list[ZooJob]) -> list[ZooJob]:
    """The jobs whose model is not in the cache yet."""
    store = cache.Cache()
    return [j for j in jobs if not store.has("models", j.key())]


def run_local(jobs: list[ZooJob], workers: int) -> list[dict]:
    """Run ``jobs`` in ``workers`` fresh processes on this machine, splitting its cores.

    Processes are spawned, not forked: a forked child would inherit the parent's torch thread
    pool and RNG state, and CUDA cannot be used after a fork.
    """
    if workers < 1:
        raise ValueError(f"workers={workers}: need at least 1")
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [replace(j, threads=threads) for j in jobs]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_call, jobs))


def _call(job: ZooJob) -> dict:
    return job()


def run_submitit(
    jobs: list[ZooJob], folder: Path | str, cluster: str = "slurm", timeout_min: int = 240, **slurm
) -> list[dict]:
    """Submit ``jobs`` through submitit and wait for them: one Slurm job per model.

    ``cluster="local"`` runs them as local subprocesses (what the tests use); ``slurm`` options
    such as ``slurm_partition="gpu"``, ``gpus_per_node=1``, ``cpus_per_task=8`` pass through to
    ``AutoExecutor.update_parameters``. Logs go to ``folder``.
    """
    try:
        import submitit
    except ImportError:
        raise ImportError("submitit is not installed: pip install submitit==1.5.4") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(timeout_min=timeout_min, name="robustlens-zoo", **slurm)
    with executor.batch():
        submitted = [executor.submit(job) for job in jobs]
    return [s.result() for s in submitted]
