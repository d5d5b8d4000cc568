"""The model: the LightningModule and its loss, the Hugging Face encoder and the parts lit_ner adds
to it (word-shape scores, the CRF), and the metrics. Imports nothing here, so that reading a
checkpoint's weights (`model.encoder`, `model.checkpoint`) loads no Lightning."""
