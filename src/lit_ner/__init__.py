"""lit_ner: fine-tune, evaluate and ship transformer NER models with PyTorch Lightning."""

from lit_ner.data import WNUT17_LABELS, NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.inference import Tagger
from lit_ner.metrics import NERMetrics, ner_scores
from lit_ner.model import TokenClassifier

__all__ = [
    "WNUT17_LABELS",
    "LitNerError",
    "NERDataModule",
    "NERMetrics",
    "Tagger",
    "TokenClassifier",
    "ner_scores",
]
__version__ = "0.1.0"
