"""lit_ner: fine-tune, evaluate and ship transformer NER models with PyTorch Lightning.

The names below are imported on first use, so that `from lit_ner import Tagger` loads no
Lightning and `lit_ner evaluate` no torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` imports on use
    from lit_ner.data.datamodule import NERDataModule
    from lit_ner.errors import LitNerError
    from lit_ner.model.metrics import NERMetrics
    from lit_ner.model.module import TokenClassifier
    from lit_ner.scoring import ner_scores
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.training.callbacks import ReportWriter
    from lit_ner.wnut17 import WNUT17_LABELS

_EXPORTS = {
    "WNUT17_LABELS": "lit_ner.wnut17",
    "LitNerError": "lit_ner.errors",
    "NERDataModule": "lit_ner.data.datamodule",
    "NERMetrics": "lit_ner.model.metrics",
    "ReportWriter": "lit_ner.training.callbacks",
    "Tagger": "lit_ner.tagging.tagger",
    "TokenClassifier": "lit_ner.model.module",
    "ner_scores": "lit_ner.scoring",
}
__all__ = [
    "WNUT17_LABELS",
    "LitNerError",
    "NERDataModule",
    "NERMetrics",
    "ReportWriter",
    "Tagger",
    "TokenClassifier",
    "ner_scores",
]
try:
    __version__ = importlib.metadata.version("lit-ner")
except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lit_ner' has no attribute {name!r}")
