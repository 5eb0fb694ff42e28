"""Progress a person can watch while notebooks run: bars and notes, to the terminal or a file.

Inside a notebook kernel a progress bar would land in the executed notebook (and on the page),
so the runner (:mod:`robustlens.book.runner`) sets ``ROBUSTLENS_PROGRESS`` to a file; bars and
notes then go there, and the runner shows them in the terminal as they come. Outside the runner
(a Python session, the command line) bars go to the terminal as usual.
"""

from __future__ import annotations

import os
import time

from tqdm.auto import tqdm

ENV = "ROBUSTLENS_PROGRESS"
#: The first words of the notes the runner counts for its end-of-run summary.
COMPUTED, FROM_CACHE = "computing", "from cache"


_open: dict[str, object] = {}


def _target():
    # One line-buffered handle per file and process: bars come and go, the handle stays.
    path = os.environ.get(ENV)
    if not path:
        return None
    if path not in _open:
        _open[path] = open(path, "a", buffering=1, encoding="utf-8")
    return _open[path]


def bar(*args, **kwargs) -> tqdm:
    """A tqdm bar that writes to the progress file when the runner asked for one."""
    fh = _target()
    if fh is None:
        return tqdm(*args, **kwargs)
    # Plain ASCII, few updates: the runner reads the file, not a terminal. ``disable`` is passed
    # explicitly because the runner also sets TQDM_DISABLE, which silences every other bar
    # (those of third-party code) inside the kernel.
    kwargs.update(
        file=fh, ascii=True, mininterval=2.0, ncols=100, disable=bool(kwargs.get("disable", False))
    )
    return tqdm(*args, **kwargs)


def note(text: str) -> None:
    """One line of news (``computing ...`` / ``from cache ...``) for whoever is watching."""
    fh = _target()
    if fh is None:
        return
    fh.write(f"\n@{time.time():.0f} {text}\n")
