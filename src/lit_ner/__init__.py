"""lit_ner: fine-tune, evaluate and ship transformer NER models with PyTorch Lightning.

The names below are imported on first use, so that `from lit_ner import Tagger` loads no
Lightning and `lit_ner evaluate` no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` imports on use
    from lit_ner.callbacks import ReportWriter
    from lit_ner.data import NERDataModule
    from lit_ner.errors import LitNerError
    from lit_ner.formats import WNUT17_LABELS
    from lit_ner.inference import Tagger
    from lit_ner.metrics import NERMetrics
    from lit_ner.model import TokenClassifier
    from lit_ner.scoring import ner_scores

_EXPORTS = {
    "WNUT17_LABELS": "lit_ner.formats",
    "LitNerError": "lit_ner.errors",
    "NERDataModule": "lit_ner.data",
    "NERMetrics": "lit_ner.metrics",
    "ReportWriter": "lit_ner.callbacks",
    "Tagger": "lit_ner.inference",
    "TokenClassifier": "lit_ner.model",
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
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lit_ner' has no attribute {name!r}")
