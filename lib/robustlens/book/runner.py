"""Execute the book's notebooks with papermill, skipping those whose inputs have not changed.

Sources are MyST-markdown notebooks in ``notebooks/``. Each is executed per profile into
``_build/executed/<profile>/`` (so switching between ``smoke`` and ``cpu`` re-executes nothing
that is already there) and then copied into ``book/`` for Jupyter Book. A notebook is skipped
when its stamp — a hash of its source, its parameters, the library's source and the package
versions — matches the one recorded with its last successful run.
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

from robustlens.science.profiles import get_profile

ROOT = Path(__file__).resolve().parents[2]
LIB = Path(__file__).resolve().parent


@dataclass
class RunResult:
    name: str
    executed: bool
    seconds: float


def notebook_sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("*.md"))


def library_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(LIB.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".csv", ".json") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(LIB)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "torchattacks", "numpy", "pandas", "matplotlib", "seaborn", "myst-nb", "papermill"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def stamp(source: Path, parameters: dict) -> str:
    payload = json.dumps({"source": source.read_text(), "parameters": parameters,
                          "library": library_fingerprint(), "versions": _versions()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _to_ipynb(source: Path):
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected cell (and the defaults it overrides) so the HTML does not show them."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("injected-parameters" in tags or "parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def execute(source: Path, out_path: Path, parameters: dict, cwd: Path) -> None:
    """Run one notebook; the output appears at ``out_path`` only if every cell succeeded."""
    import nbformat
    import papermill

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".run-") as tmp:
        src_nb = Path(tmp) / f"{source.stem}.source.ipynb"
        nbformat.write(_to_ipynb(source), src_nb)
        partial = Path(tmp) / f"{source.stem}.ipynb"
        try:
            papermill.execute_notebook(str(src_nb), str(partial), parameters=parameters, cwd=str(cwd),
                                       kernel_name="python3", progress_bar=False, log_output=False)
        except papermill.PapermillExecutionError as exc:
            failed = out_path.parent / "failed" / f"{source.stem}.ipynb"
            failed.parent.mkdir(exist_ok=True)
            shutil.copy(partial, failed)
            raise NotebookFailed(f"{source.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                                 f"(partial output kept in {failed})") from None
        _hide_injected_parameters(partial)
        os.replace(partial, out_path)


class NotebookFailed(RuntimeError):
    pass


def run_all(profile: str, names: list[str] | None = None, force: bool = False, device: str = "auto",
            root: Path = ROOT, log=print) -> list[RunResult]:
    """Execute (or skip) every notebook at ``profile``, then install the results into ``book/``."""
    get_profile(profile)  # fail on a bad profile before anything runs or is written
    sources = notebook_sources(root)
    if names:
        unknown = set(names) - {s.stem for s in sources}
        if unknown:
            raise ValueError(f"unknown notebook(s) {', '.join(sorted(unknown))}: choose from "
                             f"{', '.join(s.stem for s in sources)}")
        sources = [s for s in sources if s.stem in names]
    # Figures must be real PNGs: a forced Agg backend makes myst-nb glue store them as text.
    os.environ.pop("MPLBACKEND", None)
    # Progress bars would land in the pages as stderr text; the runner reports progress instead.
    os.environ["TQDM_DISABLE"] = "1"
    executed_dir = root / "_build" / "executed" / profile
    timings_path = executed_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    results = []
    for source in sources:
        params = {"profile": profile, "device": device}
        key = stamp(source, params)
        out = executed_dir / f"{source.stem}.ipynb"
        record = timings.get(source.stem, {})
        if not force and out.is_file() and record.get("stamp") == key:
            log(f"[skip] {source.name}: unchanged since its last run at profile {profile} "
                f"({record.get('seconds', 0):.0f} s)")
            results.append(RunResult(source.stem, False, 0.0))
        else:
            log(f"[run ] {source.name} at profile {profile} ...")
            t0 = time.perf_counter()
            execute(source, out, params, cwd=root / "notebooks")
            seconds = time.perf_counter() - t0
            timings[source.stem] = {"stamp": key, "seconds": round(seconds, 1),
                                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            _atomic_write_text(timings_path, json.dumps(timings, indent=2, sort_keys=True))
            log(f"[done] {source.name}: {seconds:.1f} s")
            results.append(RunResult(source.stem, True, seconds))
        _install(out, root / "book" / out.name)
    return results


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _install(src: Path, dest: Path) -> None:
    if dest.is_file() and dest.read_bytes() == src.read_bytes():
        return  # leave the mtime alone so Sphinx does not rebuild the page
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m robustlens run", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--force", action="store_true", help="re-execute even unchanged notebooks")
    parser.add_argument("notebooks", nargs="*", help="names (without .md) to run; default: all")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = run_all(args.profile, args.notebooks or None, args.force, args.device)
    n_run = sum(r.executed for r in results)
    print(f"{n_run} notebook(s) executed, {len(results) - n_run} unchanged, {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return 0
