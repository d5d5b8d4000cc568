"""A trained model out of lit_ner: the Hugging Face folder, ONNX, the model card, the Hub."""
