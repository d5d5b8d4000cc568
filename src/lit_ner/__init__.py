"""lit_ner: fine-tune, evaluate and ship transformer NER models with PyTorch Lightning.

The names below are imported on first use, so that `from lit_ner import Tagger` loads no
Lightning and `lit_ner evaluate` no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

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
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lit_ner' has no attribute {name!r}")
