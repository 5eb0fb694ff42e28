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
    overrides: dict = field(default_factory=dict)
    threads: int | None = None

    @property
    def label(self) -> str:
        return f"{self.arch}/{self.recipe}/seed{self.seed}"

    def key(self) -> str:
        from robustlens.science import zoo

        p = profiles.get_profile(self.profile, **self.overrides)
        return zoo.model_key(zoo.make_spec(p, self.arch, self.recipe, self.seed))

    def __call__(self) -> dict:
        import torch

        from robustlens.science import zoo

        if self.threads:
            # Jobs sharing one machine split its cores; torch's default would oversubscribe them.
            torch.set_num_threads(self.threads)
        p = profiles.get_profile(self.profile, **self.overrides)
        was_cached = cache.Cache().has("models", self.key())
        start = time.perf_counter()
        entry = zoo.get(p, self.arch, self.recipe, self.seed, device=self.device)
        return {
            "label": self.label,
            "key": entry.key,
            "cached": was_cached,
            "seconds": time.perf_counter() - start,
            "clean_acc": entry.metrics["clean_acc"],
        }


def plan(profile: str, device: str = "auto", **overrides) -> list[ZooJob]:
    """Every model of the profile's zoo (architectures × recipes × seeds), as jobs."""
    p = profiles.get_profile(profile, **overrides)
    return [
        ZooJob(profile, a, r, s, device, dict(overrides))
        for a in p.architectures
        for r in p.recipes
        for s in p.seeds
    ]


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
