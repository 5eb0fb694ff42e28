"""A content-addressed store for results that take long to compute.

An entry's key hashes its specification, the source of the library modules that produce it,
and the versions of the packages they use, so changing any of them computes a new entry while an
unchanged rerun reuses the old one. Entries are written into a temporary folder and renamed into
place, so a run killed half-way never leaves something that looks like a result; every file's
SHA-256 is kept in the entry's ``meta.json`` and checked when it is read.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy
import torch
import torchattacks


class CacheError(RuntimeError):
    """A cached entry is unreadable or fails its checksum; the message names the folder to delete."""


def default_root() -> Path:
    return Path(
        os.environ.get("ROBUSTLENS_CACHE", Path.home() / ".cache" / "robustlens" / "results")
    )


def check_root(root: Path | None = None) -> Path:
    """Refuse, in one line naming the fix, a result cache that is a file or cannot be written,
    before anything is computed for it."""
    root = Path(root or default_root())
    where = f"ROBUSTLENS_CACHE={root}" if os.environ.get("ROBUSTLENS_CACHE") else str(root)
    if root.exists() and not root.is_dir():
        raise CacheError(f"the result cache {where} is a file: point ROBUSTLENS_CACHE at a folder")
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CacheError(
            f"the result cache {where} lies under the file {existing}: "
            "point ROBUSTLENS_CACHE at a folder"
        )
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise CacheError(
            f"the result cache {where} cannot be written ({existing} is read-only): "
            "point ROBUSTLENS_CACHE at a writable folder"
        )
    return root


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (data sets and checkpoints can be large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalised_source(source: str) -> str:
    """The code of ``source`` without comments, docstrings or layout: its syntax tree, dumped.

    The key of a trained model must change when the code that trains it changes and only then:
    hashing the raw text would retrain the zoo for a reworded comment. Comments never reach the
    syntax tree; docstrings are removed from it here; what is left is what runs.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


# Each module's code is read once per process: the code that runs is the code loaded at import,
# and an edit to a file while a notebook runs must not give its later results other keys.
_SOURCE_HASHES: dict[str, str] = {}


def _source_hash(mod: ModuleType) -> str:
    if mod.__name__ not in _SOURCE_HASHES:
        code = normalised_source(inspect.getsource(mod))
        _SOURCE_HASHES[mod.__name__] = hashlib.sha256(code.encode()).hexdigest()
    return _SOURCE_HASHES[mod.__name__]


def code_fingerprint(modules: list[ModuleType]) -> str:
    """Hash of the code of ``modules``: a change to what they run invalidates what they computed."""
    digest = hashlib.sha256()
    for mod in sorted(modules, key=lambda m: m.__name__):
        digest.update(mod.__name__.encode())
        digest.update(_source_hash(mod).encode())
    return digest.hexdigest()[:16]


def versions() -> dict:
    # Python's minor version too: the syntax-tree dump of the code part may differ between them.
    return {
        "torch": torch.__version__,
        "torchattacks": torchattacks.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version_tuple()[0] + "." + platform.python_version_tuple()[1],
    }


def make_key(spec: dict, modules: list[ModuleType]) -> str:
    payload = json.dumps(
        {"spec": spec, "code": code_fingerprint(modules), "versions": versions()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _say(text: str) -> None:
    """One line for whoever watches: the runner's progress file inside a notebook (so it never
    lands on a page), else standard error."""
    from robustlens.science import progress_log

    if os.environ.get(progress_log.ENV):
        progress_log.note(text)
    else:
        print(text, file=sys.stderr, flush=True)


class Cache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def has(self, kind: str, key: str) -> bool:
        """Whether an intact entry exists. An entry whose files fail their checksums (a disk
        error, an edit) is moved aside, with one line saying so, and counts as absent: the
        caller recomputes it."""
        folder = self.entry_dir(kind, key)
        if not (folder / "meta.json").is_file():
            return False
        problem = self._problem(folder)
        if problem is None:
            return True
        aside = folder.with_name(f".corrupt-{key}-{os.getpid()}-{time.time_ns()}")
        try:
            os.replace(folder, aside)
        except OSError:
            pass  # another process moved it first
        _say(f"cache entry {folder} {problem}: moved aside to {aside.name}, recomputing")
        return False

    @staticmethod
    def _problem(folder: Path) -> str | None:
        try:
            files = json.loads((folder / "meta.json").read_text()).get("files", {})
        except (OSError, json.JSONDecodeError):
            return "has an unreadable meta.json"
        for name, digest in files.items():
            target = folder / name
            if not target.is_file():
                return f"lacks {name}"
            if file_digest(target) != digest:
                return f"fails the checksum of {name}"
        return None

    def read_meta(self, kind: str, key: str) -> dict:
        folder = self.entry_dir(kind, key)
        try:
            return json.loads((folder / "meta.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CacheError(
                f"cache entry {folder} is unreadable ({exc}): delete that folder and rerun"
            ) from None

    def path(self, kind: str, key: str, name: str) -> Path:
        """The verified path of file ``name`` of an entry."""
        folder = self.entry_dir(kind, key)
        meta = self.read_meta(kind, key)
        expected = meta.get("files", {}).get(name)
        target = folder / name
        if expected is None or not target.is_file():
            raise CacheError(f"cache entry {folder} lacks {name}: delete that folder and rerun")
        if file_digest(target) != expected:
            raise CacheError(
                f"{target} fails its checksum (corrupt or edited): delete {folder} and rerun"
            )
        return target

    def put(
        self, kind: str, key: str, writers: dict[str, Callable[[Path], None]], meta: dict
    ) -> Path:
        """Write an entry atomically: each writer fills one file of a temporary folder, then rename."""
        final = self.entry_dir(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}.tmp-"))
        try:
            files = {}
            for name, write in writers.items():
                write(tmp / name)
                files[name] = file_digest(tmp / name)
            record = {
                **meta,
                "key": key,
                "files": files,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": versions(),
            }
            (tmp / "meta.json").write_text(
                json.dumps(record, indent=2, sort_keys=True, default=str)
            )
            # Another job may finish the same key at any moment (the zoo fans out to many
            # processes): whoever renames first wins; both computed the same thing.
            if final.exists():
                shutil.rmtree(tmp)
            else:
                try:
                    os.replace(tmp, final)
                except OSError:
                    if not (final / "meta.json").is_file():
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise CacheError(
                    f"no space left on the device of {self.root} while writing a {kind} entry: "
                    "free some space or point ROBUSTLENS_CACHE at a larger disk (nothing was kept)"
                ) from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final
