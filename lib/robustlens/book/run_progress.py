"""Showing, in the terminal, what a notebook that papermill runs is training or evaluating.

The kernel writes its progress bars and notes into a file (:mod:`robustlens.science.progress_log`);
:class:`ProgressWatcher` follows that file from a thread of the runner and prints, e.g.::

    02_filter_zoo: model 7 of 12: computing train cnn/pgd/seed1
    02_filter_zoo: train cnn/pgd/seed1:  43%|####3     | 120/279 [00:21<00:28]

and counts how many results came from the cache and how many were computed.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from robustlens.science.progress_log import COMPUTED, FROM_CACHE

_NOTE = re.compile(r"^@\d+ (.*)$")
# zoo.get's notes: "... train <label> [<key>]" / "... model <label> [<key>]"
_MODEL = re.compile(r"(?:train|model) (.+) \[([0-9a-f]{8,})\]$")


class ProgressWatcher:
    """Follow ``path`` while a notebook runs; ``log`` gets one line per note and, at most every
    ``every`` seconds, the newest state of the running bar."""

    def __init__(self, path: Path, name: str, log=print, every: float = 10.0, poll: float = 0.5):
        self.path, self.name, self.log, self.every, self.poll = Path(path), name, log, every, poll
        self.computed = self.cached = 0
        self.models: dict[str, str] = {}  # label -> cache key of every model the notebook used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._offset = 0
        self._pending = ""
        self._bar = ""
        self._shown_bar = ""
        self._last = 0.0

    def __enter__(self) -> ProgressWatcher:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self._last = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.read()  # whatever the kernel wrote last
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.read()

    def read(self) -> None:
        """Take in what was appended since the last call, and report it."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return
        # tqdm redraws a bar with carriage returns; a note is a line of its own.
        pieces = re.split(r"[\r\n]", self._pending + chunk)
        self._pending = pieces.pop()
        for piece in (p.strip() for p in pieces):
            note = _NOTE.match(piece)
            if note:
                self._note(note.group(1))
            elif piece:
                self._bar = piece
        now = time.monotonic()
        if self._bar and self._bar != self._shown_bar and now - self._last >= self.every:
            self.log(f"  {self.name}: {self._bar}")
            self._shown_bar, self._last = self._bar, now

    def _note(self, text: str) -> None:
        model = _MODEL.search(text)
        if model:
            self.models[model.group(1)] = model.group(2)
        if FROM_CACHE in text:
            self.cached += 1
            return  # instant: counted for the summary, not worth a line
        if COMPUTED in text:
            self.computed += 1
        self.log(f"  {self.name}: {text}")
        # A bar is worth a line only once it has run for a while: a quick one stays silent.
        self._last = time.monotonic()
