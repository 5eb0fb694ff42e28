"""Execute the book's notebooks with papermill, skipping those whose inputs have not changed.

Sources are MyST-markdown notebooks in ``notebooks/``; the other page sources (``_toc.yml``,
``references.bib``, the Markdown pages) live in ``book/``. Each notebook is executed per profile
into ``_build/executed/<profile>/`` (so switching between ``smoke`` and ``cpu`` re-executes nothing
that is already there) and then installed into the staging folder ``_build/staging/``, beside a
copy of the page sources: Jupyter Book builds from there, and nothing is ever written into
``book/``, ``notebooks/`` or ``lib/``. A notebook is skipped when its stamp, a hash of its source,
its parameters, the library's source and the package versions, matches the one recorded with its
last successful run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from robustlens.book.run_progress import ProgressWatcher
from robustlens.science import progress_log
from robustlens.science.profiles import get_profile, parse_overrides

# This file is lib/robustlens/book/runner.py: the repository root is three folders up, and the
# stamp must hash the whole package (a change in science re-executes the notebooks too).
LIB = Path(__file__).resolve().parents[1]
ROOT = LIB.parents[1]
PROVENANCE = "provenance.md"  # the appendix page a run writes into the staging folder


@dataclass
class RunResult:
    """One notebook of a run: whether it was executed (or found unchanged) and how long it took."""

    name: str
    executed: bool
    seconds: float
    computed: int = 0  # long results (models, evaluations) computed during the run
    cached: int = 0  # ... and found in the result cache


def notebook_sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("*.md"))


def staging_dir(root: Path = ROOT) -> Path:
    """The folder Jupyter Book builds from: page sources from ``book/`` plus executed notebooks."""
    return root / "_build" / "staging"


def library_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(LIB.rglob("*")):
        if (
            path.is_file()
            and path.suffix in (".py", ".csv", ".json")
            and "__pycache__" not in path.parts
        ):
            digest.update(str(path.relative_to(LIB)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "torch",
        "torchattacks",
        "numpy",
        "pandas",
        "matplotlib",
        "seaborn",
        "myst-nb",
        "papermill",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def stamp(source: Path, parameters: dict) -> str:
    payload = json.dumps(
        {
            "source": source.read_text(),
            "parameters": parameters,
            "library": library_fingerprint(),
            "versions": _versions(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _to_ipynb(source: Path):
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected cell (and the defaults it overrides) so the HTML hides them."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("injected-parameters" in tags or "parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def execute(source: Path, out_path: Path, parameters: dict) -> None:
    """Run one notebook; the output appears at ``out_path`` only if every cell succeeded.

    The kernel's working folder is a scratch folder under ``_build/`` that is deleted afterwards,
    so a cell that writes a file beside itself cannot leave it in the source tree.
    """
    import nbformat
    import papermill

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".run-") as tmp:
        src_nb = Path(tmp) / f"{source.stem}.source.ipynb"
        nbformat.write(_to_ipynb(source), src_nb)
        partial = Path(tmp) / f"{source.stem}.ipynb"
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        try:
            papermill.execute_notebook(
                str(src_nb),
                str(partial),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
            )
        except papermill.PapermillExecutionError as exc:
            failed = out_path.parent / "failed" / f"{source.stem}.ipynb"
            failed.parent.mkdir(exist_ok=True)
            shutil.copy(partial, failed)
            raise NotebookFailed(
                f"{source.name} failed in cell {exc.exec_count}: {exc.ename}: "
                f"{exc.evalue} (partial output kept in {failed})"
            ) from None
        _hide_injected_parameters(partial)
        os.replace(partial, out_path)


class NotebookFailed(RuntimeError):
    pass


def _is_page_source(relative: Path) -> bool:
    # book/*.ipynb are left-overs of the time the runner installed notebooks there: the staged
    # notebooks come from _build/executed only, so a stale copy can never reach the page.
    hidden = any(
        part.startswith(".") or part in ("__pycache__", "_build") for part in relative.parts
    )
    return not hidden and relative.suffix != ".ipynb"


def stage_pages(root: Path = ROOT) -> Path:
    """Mirror the page sources of ``book/`` into :func:`staging_dir`; return that folder.

    Unchanged files keep their modification time, so Sphinx rebuilds only the pages that changed.
    Pages deleted from ``book/`` and notebooks whose source left ``notebooks/`` are removed from
    the staging folder; the executed notebooks themselves are installed by :func:`run_all`.
    """
    book, staging = root / "book", staging_dir(root)
    wanted = {Path(PROVENANCE)}  # written by run_all; a placeholder until a run has happened
    if not (staging / PROVENANCE).is_file():
        _atomic_write_text(
            staging / PROVENANCE,
            "(provenance)=\n# Provenance of this build\n\nNo run of the notebooks has been "
            "recorded in this build folder yet: `make book` writes this page.\n",
        )
    for path in sorted(book.rglob("*")):
        relative = path.relative_to(book)
        if path.is_file() and _is_page_source(relative):
            wanted.add(relative)
            _install(path, staging / relative)
    chapters = {s.stem for s in notebook_sources(root)}
    for path in sorted(staging.rglob("*"), reverse=True):
        relative = path.relative_to(staging)
        if any(part.startswith(".") for part in relative.parts):
            continue  # another runner's file being installed right now
        if path.is_file():
            stale = (
                relative.stem not in chapters
                if relative.suffix == ".ipynb"
                else relative not in wanted
            )
            if stale:
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return staging


def run_all(
    profile: str,
    names: list[str] | None = None,
    force: bool = False,
    device: str = "auto",
    root: Path = ROOT,
    log=None,
    overrides: dict | None = None,
) -> list[RunResult]:
    """Execute (or skip) every notebook at ``profile`` and install each into the staging folder.

    The page sources are staged first; a notebook is installed only after it ran to the end (or
    was found unchanged), so a failure leaves the previous good page in place.
    """
    log = log or _say
    overrides = dict(overrides or {})
    # Fail on a bad profile or override before anything runs or is written.
    get_profile(profile, **overrides)
    sources = notebook_sources(root)
    if names:
        unknown = set(names) - {s.stem for s in sources}
        if unknown:
            raise ValueError(
                f"unknown notebook(s) {', '.join(sorted(unknown))}: choose from "
                f"{', '.join(s.stem for s in sources)}"
            )
        sources = [s for s in sources if s.stem in names]
    # Figures must be real PNGs: a forced Agg backend makes myst-nb glue store them as text.
    os.environ.pop("MPLBACKEND", None)
    # Progress bars would land in the pages as stderr text; the runner reports progress instead.
    os.environ["TQDM_DISABLE"] = "1"
    staging = stage_pages(root)
    executed_dir = root / "_build" / "executed" / profile
    timings_path = executed_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    results = []
    for source in sources:
        params = {"profile": profile, "device": device, "overrides": overrides}
        key = stamp(source, params)
        out = executed_dir / f"{source.stem}.ipynb"
        record = timings.get(source.stem, {})
        if not force and out.is_file() and record.get("stamp") == key:
            log(
                f"[skip] {source.name}: unchanged since its last run at profile {profile} "
                f"({record.get('seconds', 0):.0f} s)"
            )
            results.append(RunResult(source.stem, False, 0.0))
        else:
            log(f"[run ] {source.name} at profile {profile} ...")
            t0 = time.perf_counter()
            # The kernel inherits this variable and writes its bars and notes there.
            watch_file = executed_dir / f".progress-{source.stem}.log"
            os.environ[progress_log.ENV] = str(watch_file)
            try:
                with ProgressWatcher(watch_file, source.stem, log) as watcher:
                    execute(source, out, params)
            finally:
                os.environ.pop(progress_log.ENV, None)
            seconds = time.perf_counter() - t0
            timings[source.stem] = {
                "stamp": key,
                "seconds": round(seconds, 1),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "computed": watcher.computed,
                "cached": watcher.cached,
                "models": dict(sorted(watcher.models.items())),
            }
            _atomic_write_text(timings_path, json.dumps(timings, indent=2, sort_keys=True))
            log(
                f"[done] {source.name}: {seconds:.1f} s ({watcher.computed} results computed, "
                f"{watcher.cached} from the cache)"
            )
            results.append(RunResult(source.stem, True, seconds, watcher.computed, watcher.cached))
        _install(out, staging / out.name)
    _atomic_write_text(
        staging / PROVENANCE,
        provenance_page(profile, overrides, device, timings, [s.stem for s in sources]),
    )
    return results


def _machine(device: str) -> str:
    import platform

    import torch

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads)"
    if torch.cuda.is_available() and device != "cpu":
        text += f"; GPU: {torch.cuda.get_device_name(0)}"
    return text


def provenance_page(
    profile: str, overrides: dict, device: str, timings: dict, names: list[str]
) -> str:
    """The appendix page a run writes: what ran, where, with which code and packages, how long
    each notebook took, and every model each notebook used with its cache key."""
    rows = "\n".join(
        f"| {n} | {t.get('seconds', 0):,.0f} | {t.get('computed', '—')} | {t.get('cached', '—')} "
        f"| {t.get('finished', '—')} |"
        for n in names
        for t in [timings.get(n, {})]
    )
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items() if v)
    changed = ", ".join(f"{k} = {v}" for k, v in overrides.items()) or "none"
    total = sum(timings.get(n, {}).get("seconds", 0) for n in names)
    models = []
    for n in names:
        used = timings.get(n, {}).get("models", {})
        if used:
            models.append(f"**{n}** ({len(used)} models)\n")
            models += [f"- `{label}`: `{key}`" for label, key in used.items()]
            models.append("")
    return f"""(provenance)=
# Provenance of this build

Written by the run that executed the notebooks (`python -m robustlens run`,
{{py:func}}`~robustlens.book.runner.provenance_page`).

- **Profile:** `{profile}`; values changed for the run: {changed}; device: `{device}`.
- **Machine:** {_machine(device)}.
- **Library code:** SHA-256 `{library_fingerprint()[:16]}` of `lib/robustlens`.
- **Packages:** {versions}.

| notebook | wall time of its last run (s) | results computed | from the cache | finished |
|---|---:|---:|---:|---|
{rows}

Total wall time of the notebooks' last runs: {total / 60:,.1f} min. A notebook whose source,
parameters, library code and packages did not change since its last run is not run again; its
numbers are those of that run.

## Models each notebook used

Each model's cache key hashes its whole specification (seeds included), the code that trains it
and the package versions: the same key is the same model.

{chr(10).join(models) if models else "No model was recorded for these runs."}
"""


def _say(text: str) -> None:
    # Flushed: under make or CI stdout is a pipe, and a watcher's line must show when it happens.
    print(text, flush=True)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _install(src: Path, dest: Path) -> None:
    if dest.is_file() and dest.read_bytes() == src.read_bytes():
        return  # leave the mtime alone so Sphinx does not rebuild the page
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own, so two runners installing the same page do not trip over each other.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    shutil.copy(src, tmp)  # with the source's permissions, not mkstemp's private ones
    os.replace(tmp, dest)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m robustlens run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--force", action="store_true", help="re-execute even unchanged notebooks")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one profile value for this run, e.g. -p eps=0.2 -p seeds=0,1,2",
    )
    parser.add_argument(
        "--stage-only",
        action="store_true",
        help="only refresh the page sources in _build/staging (make html)",
    )
    parser.add_argument("notebooks", nargs="*", help="names (without .md) to run; default: all")
    args = parser.parse_args(argv)
    if args.stage_only:
        print(f"page sources staged in {stage_pages()}", file=sys.stderr)
        return 0
    t0 = time.perf_counter()
    overrides = parse_overrides(args.param)
    # Refused here, before a kernel starts: a bad profile value, a device without CUDA, a
    # result cache that is a file or read-only.
    from robustlens.science import cache, zoo

    get_profile(args.profile, **overrides)
    zoo.resolve_device(args.device)
    cache.check_root()
    results = run_all(
        args.profile, args.notebooks or None, args.force, args.device, overrides=overrides
    )
    n_run = sum(r.executed for r in results)
    print(
        f"{n_run} notebook(s) executed, {len(results) - n_run} unchanged; "
        f"{sum(r.computed for r in results)} results computed, "
        f"{sum(r.cached for r in results)} from the cache; "
        f"total {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # python -m robustlens.book.runner --stage-only (the Makefile's html)
    sys.exit(main())
