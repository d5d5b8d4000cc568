"""Reading a lit_ner checkpoint safely, and what resuming one exactly needs beyond Lightning's
state: with torch alone (no Lightning), so that tagging and exporting a `.ckpt` load no Lightning.

- `load_checkpoint` loads with `weights_only=True` (no arbitrary pickled code) and turns a
  missing, truncated or corrupt file into one clear line (`checkpoint_errors`).
- `rng_states`/`set_rng_states`: every RNG training draws from, as plain values a weights-only
  load accepts, so a resumed run draws the dropout masks the uninterrupted one drew.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line


def load_checkpoint(path: str | Path, map_location: Any = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """`torch.load` of a Lightning checkpoint, with a `LitNerError` naming the file when it is
    missing, truncated, corrupt, or holds objects that `weights_only` refuses."""
    with checkpoint_errors(path):
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise LitNerError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def checkpoint_run_dir(path: str | Path) -> Path:
    """The run directory a checkpoint was written in: `RUN_DIR/checkpoints/NAME.ckpt` (see
    `training.resume` for the layout)."""
    return Path(path).resolve().parent.parent


@contextmanager
def checkpoint_errors(path: str | Path) -> Iterator[None]:
    """Checks that `path` looks like a checkpoint before the body reads it, and turns what a
    `torch.load` of it raises into one `LitNerError` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LitNerError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive, its index at the very end
        raise LitNerError(f"{path}: not a checkpoint, or a truncated one (no zip archive index at its end)")
    try:
        yield
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc).lower():
            raise LitNerError(
                f"{path}: the checkpoint holds objects other than tensors and plain values; load it "
                "with --weights_only false only if you trust where it came from"
            ) from None
        raise LitNerError(f"{path}: not a readable checkpoint ({first_line(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LitNerError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({first_line(exc)})"
        ) from None


def rng_states() -> dict[str, Any]:
    """Every RNG training draws from, as values `torch.load(weights_only=True)` accepts."""
    import random

    import numpy as np

    numpy_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
