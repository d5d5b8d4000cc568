"""Tagging text with a trained model, without Lightning: the `Tagger`, `lit_ner tag`, the torch and
ONNX Runtime models it runs, the pipeline's aggregation, and `lit_ner serve`."""
