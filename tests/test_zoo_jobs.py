"""The zoo fans out: jobs through submitit's local executor land in the shared cache, and a
second call trains nothing."""

from __future__ import annotations

import pytest

from robustlens.science import cache, zoo_jobs


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ROBUSTLENS_CACHE", str(root))  # inherited by the job processes
    return root


def test_two_submitit_jobs_fill_the_cache_and_a_second_call_trains_nothing(
    isolated_cache, tmp_path
):
    pytest.importorskip("submitit")
    jobs = [j for j in zoo_jobs.plan("smoke", device="cpu") if j.arch == "cnn"][:2]
    assert len(jobs) == 2 and len({j.key() for j in jobs}) == 2
    assert zoo_jobs.pending(jobs) == jobs

    first = zoo_jobs.run_submitit(jobs, tmp_path / "logs", cluster="local", timeout_min=20)
    assert [r["cached"] for r in first] == [False, False]
    store = cache.Cache(isolated_cache)
    assert all(store.has("models", j.key()) for j in jobs)
    assert zoo_jobs.pending(jobs) == []

    second = zoo_jobs.run_submitit(jobs, tmp_path / "logs2", cluster="local", timeout_min=20)
    assert [r["cached"] for r in second] == [True, True]
    assert [r["key"] for r in second] == [r["key"] for r in first]


def test_racing_writers_keep_one_entry(isolated_cache):
    # Two jobs that finish the same key: the second put finds the entry and leaves it alone.
    store = cache.Cache(isolated_cache)

    def writer(text):
        return {"x.txt": lambda path: path.write_text(text)}

    first = store.put("models", "k", writer("first"), {})
    second = store.put("models", "k", writer("second"), {})
    assert first == second
    assert store.path("models", "k", "x.txt").read_text() == "first"
    leftovers = [p.name for p in first.parent.iterdir() if p.name != "k"]
    assert leftovers == []


def test_bad_worker_count_is_refused():
    with pytest.raises(ValueError, match="workers"):
        zoo_jobs.run_local([], 0)


def test_a_writer_that_loses_the_rename_race_leaves_the_winner(isolated_cache, monkeypatch):
    # The other job renames its entry into place between our existence check and our rename.
    store = cache.Cache(isolated_cache)
    store.put("models", "k", {"x.txt": lambda path: path.write_text("winner")}, {})
    final = store.entry_dir("models", "k")
    real_exists = type(final).exists
    monkeypatch.setattr(
        type(final), "exists", lambda self: False if self == final else real_exists(self)
    )
    store.put("models", "k", {"x.txt": lambda path: path.write_text("loser")}, {})
    assert store.path("models", "k", "x.txt").read_text() == "winner"
    assert [p.name for p in final.parent.iterdir()] == ["k"]


def test_the_plan_holds_every_model_the_notebooks_train_once():
    from robustlens.science import awnet_training, profiles, zoo

    p = profiles.get_profile("smoke")
    jobs = zoo_jobs.plan("smoke", device="cpu")
    keys = [j.key() for j in jobs]
    assert len(keys) == len(set(keys))  # the sweep's reference eps is not trained twice
    want = [zoo.make_spec(p, a, r, s) for a in p.architectures for r in p.recipes for s in p.seeds]
    seed = p.seeds[0]
    want += [
        zoo.make_spec(p, p.arch, "gradpen", seed, lam=lam, norm="l1") for lam in p.gradpen_l1_lams
    ]
    want += [
        zoo.make_spec(profiles.get_profile("smoke", eps=e), p.arch, "pgd", seed)
        for e in p.at_eps_sweep
    ]
    want += [
        zoo.make_spec(p, p.arch, "awnet", seed, **awnet_training.ABLATIONS[name])
        for name in p.awnet_ablations
    ]
    assert {zoo.model_key(s) for s in want} <= set(keys)
    waves = {j.key(): j.wave for j in jobs}
    teachers = zoo.make_spec(p, p.arch, "awnet", seed)["teachers"].values()
    assert all(waves[k] == 0 for k in teachers)
    assert waves[zoo.model_key(zoo.make_spec(p, p.arch, "awnet", seed))] == 1
