"""The RobustBench models of Gavrikov & Keuper (2022) as a table of facts, and a careful checkpoint loader.

* :func:`gk_pairs` -- the 71 L-infinity models of the RobustBench zoo that Gavrikov & Keuper,
  "Adversarial Robustness through the Lens of Convolutional Filters" (CVPR-W 2022,
  arXiv:2204.02481) studied, each with the normally trained model they compared it with. The values
  live in ``data/robustbench_gk_pairs.csv`` inside this package, so nothing outside the project is
  needed at run time. Sources (cited in the CSV header): the RobustBench leaderboard ``model_info``
  (Croce et al., "RobustBench: a standardized adversarial robustness benchmark", NeurIPS 2021
  Datasets and Benchmarks; MIT) for accuracies, architecture and venue, and Gavrikov & Keuper's
  published model metadata and robust-vs-normal pairings (CC BY-SA 4.0) for the normal counterparts.
* :func:`load_robustbench` -- ``robustbench.utils.load_model`` itself, but every failure becomes
  one :class:`~robustlens.outside.robustbench_registry.RobustBenchError` line that says what to
  do, and checkpoints are checked before robustbench sees them:

  - robustbench 1.1.1 calls ``torch.load(path, map_location="cpu")`` without ``weights_only``. With
    torch >= 2.6 that means ``weights_only=True``, *unless* the environment sets
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which turns it into a full, code-executing unpickle of
    a file fetched from Google Drive. So we first load every file ourselves with
    ``weights_only=True`` (memory-mapped for zip-format files, so this costs little) and only hand
    it to robustbench when that succeeded. It also gives clear errors for HTML pages saved as
    ``.pt`` (what failed Google Drive downloads used to leave), empty and truncated files.
  - A missing checkpoint is downloaded from RobustBench's Google Drive with the same ``gdown`` call
    robustbench uses, but in a child process with connect/read timeouts (requests has none by
    default, so a silently dropped connection would hang) and into a temporary folder beside the
    target; the file is validated and then atomically renamed into place. An interrupted or failed
    download therefore never leaves a half-written ``.pt`` behind.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd
from torch import nn

from robustlens.outside.checkpoints import CheckpointError, read_checkpoint
from robustlens.outside.robustbench_compat import import_robustbench
from robustlens.outside.robustbench_registry import RobustBenchError, registry_entry

__all__ = ["PAIRS_CSV", "gk_pairs", "checkpoint_paths", "load_robustbench"]

#: The packaged table of [GK]'s robust / normal RobustBench pairs.
PAIRS_CSV = "robustbench_gk_pairs.csv"
GDRIVE_URL = "https://drive.google.com/uc?id={}"
DEFAULT_TIMEOUT = (20.0, 120.0)  # seconds: (connect, read stall) for the Google Drive download


# ----------------------------------------------------------------------------- table of facts


def gk_pairs() -> pd.DataFrame:
    """The 71 robust L-inf RobustBench models of [GK] with their normal counterparts (one row each).

    Columns: ``model_id`` (``dataset/threat/name``), ``name``, ``dataset``, ``threat_model``, ``eps``,
    ``architecture``, ``clean_acc``, ``autoattack_acc`` (RobustBench leaderboard, %),
    ``additional_data``, ``forward_passes`` (3 for an ensemble), ``venue``, ``paper_title``,
    ``paper_url``, ``gk_clean_acc``, ``gk_robust_acc`` (the values [GK] list, %), ``normal_model``
    ([GK]'s name for the normally trained counterpart), ``normal_architecture``, ``normal_arch_from``
    (the RobustBench id whose architecture it uses, or ``timm/<name>``), ``normal_clean_acc`` (%).
    """
    text = resources.files(__package__).joinpath("data", PAIRS_CSV).read_text(encoding="utf-8")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    df = pd.read_csv(io.StringIO(body), dtype={"eps": str})
    df["additional_data"] = df["additional_data"].astype(str).str.lower().eq("true")
    df.insert(1, "name", df["model_id"].str.rsplit("/", n=1).str[-1].astype(df["model_id"].dtype))
    return df


def checkpoint_paths(model_id: str, model_dir: Path | str) -> list[Path]:
    """Where ``robustbench.utils.load_model`` looks: ``model_dir/<dataset>/<threat>/<name>.pt``
    (ensembles: ``<name>.pt_m0.pt``, ``<name>.pt_m1.pt``, ...). Empty for timm-hosted models."""
    dataset, threat, name, entry = registry_entry(model_id)
    folder = Path(model_dir) / dataset / threat.replace("_3d", "")
    base = folder / f"{name}.pt"
    if entry is None:
        return []
    ids = entry.get("gdrive_id")
    if isinstance(ids, (list, tuple)):
        return [Path(f"{base}_m{i}.pt") for i in range(len(ids))]
    return [base]


# ----------------------------------------------------------------------------- download

# Runs in a child process: the same gdown call robustbench makes, plus timeouts (gdown passes
# none to requests) that only this child process sees.
_DOWNLOAD_CHILD = r"""
import sys
import requests
connect, read = float(sys.argv[3]), float(sys.argv[4])
_request = requests.Session.request
def request(self, method, url, **kwargs):
    if kwargs.get("timeout") is None:
        kwargs["timeout"] = (connect, read)
    return _request(self, method, url, **kwargs)
requests.Session.request = request
import gdown
try:
    out = gdown.download(id=sys.argv[1], output=sys.argv[2], quiet=True)
except (requests.ConnectionError, requests.Timeout) as exc:
    print("no connection to Google Drive (" + type(exc).__name__ + ")", file=sys.stderr)
    sys.exit(10)
except Exception as exc:
    msg = " ".join(str(exc).split())[:200]
    print(type(exc).__name__ + ": " + msg, file=sys.stderr)
    sys.exit(11)
sys.exit(0 if out else 12)
"""


def _manual_fix(path: Path, gdrive_id: str) -> str:
    return (
        f"put the checkpoint there by hand (RobustBench's Google Drive file {GDRIVE_URL.format(gdrive_id)}, "
        f"saved as {path.name})"
    )


def _download(model_id: str, gdrive_id: str, dest: Path, timeout: tuple[float, float]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".download", dir=dest.parent))
    try:
        tmp = tmpdir / dest.name
        print(f"Downloading {model_id} from RobustBench's Google Drive into {dest} ...", flush=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _DOWNLOAD_CHILD,
                gdrive_id,
                str(tmp),
                str(float(timeout[0])),
                str(float(timeout[1])),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not tmp.is_file():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            reason = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise RobustBenchError(
                f"{model_id}: {dest} is not there and the download failed (offline? {reason}): "
                f"{_manual_fix(dest, gdrive_id)}"
            )
        try:
            read_checkpoint(
                tmp, fix=f"nothing was saved; {_manual_fix(dest, gdrive_id)}", mmap=True
            )
        except CheckpointError as exc:
            raise RobustBenchError(
                f"{model_id}: the download from Google Drive failed: "
                f"{str(exc).replace(str(tmp), 'the downloaded file')}"
            ) from None
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# ----------------------------------------------------------------------------- loading


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def load_robustbench(
    model_id: str,
    model_dir: Path | str,
    device: str = "cpu",
    *,
    download: bool = True,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> nn.Module:
    """Load ``model_id`` (``dataset/threat/name``) through ``robustbench.utils.load_model``, in eval mode on ``device``.

    The checkpoint is looked for at ``model_dir/<dataset>/<threat>/<name>.pt`` (see
    :func:`checkpoint_paths`), downloaded from RobustBench's Google Drive when missing and
    ``download`` is true, and validated with ``torch.load(weights_only=True)`` before robustbench
    loads it. ``timeout`` is the (connect, read) timeout of the download in seconds. Every failure
    raises :class:`~robustlens.outside.robustbench_registry.RobustBenchError` with a one-line
    message that says what to do.
    """
    dataset, threat, name, entry = registry_entry(model_id)
    if entry is not None and entry.get("gdrive_id") is None:
        raise RobustBenchError(
            f"{model_id}: RobustBench 1.1.1 lists no checkpoint for this model (gdrive_id is "
            f"None), so it cannot be loaded"
        )
    paths = checkpoint_paths(model_id, model_dir)
    gdrive_ids = entry.get("gdrive_id") if entry else None
    if isinstance(gdrive_ids, str):
        gdrive_ids = [gdrive_ids]
    for path, gid in zip(paths, gdrive_ids or []):
        if not path.is_file():
            if not download:
                raise RobustBenchError(
                    f"{model_id}: {path} is missing (download=False): {_manual_fix(path, gid)}"
                )
            _download(model_id, gid, path, timeout)
        try:
            read_checkpoint(
                path, fix=f"delete it and load again online, or {_manual_fix(path, gid)}", mmap=True
            )
        except CheckpointError as exc:
            raise RobustBenchError(f"{model_id}: {exc}") from None

    rb = import_robustbench()
    try:
        model = rb.utils.load_model(
            model_name=name, dataset=dataset, threat_model=threat, model_dir=str(model_dir)
        )
    except (
        OSError
    ) as exc:  # includes requests' ConnectionError: timm / torchvision weights fetched online
        raise RobustBenchError(
            f"{model_id}: robustbench could not fetch the weights (offline? {_one_line(exc)}); "
            f"run once with internet so they are cached"
        ) from None
    except RuntimeError as exc:
        if "state_dict" in str(exc):
            raise RobustBenchError(
                f"{model_id}: the checkpoint in {paths[0] if paths else model_dir} does not fit "
                f"the registered architecture ({_one_line(exc)[:160]}): it is the wrong file, "
                f"delete it and load again"
            ) from None
        raise RobustBenchError(
            f"{model_id}: robustbench.load_model failed ({_one_line(exc)})"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RobustBenchError(
            f"{model_id}: the checkpoint does not have the layout robustbench expects "
            f"({_one_line(exc)}): delete {paths[0] if paths else 'it'} and load again"
        ) from None
    try:
        return model.to(device).eval()
    except (RuntimeError, AssertionError) as exc:
        raise RobustBenchError(
            f"{model_id}: cannot move the model to device={device!r} ({_one_line(exc)}): "
            f"use device='cpu'"
        ) from None
