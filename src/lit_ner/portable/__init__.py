"""The code every export carries (`export.hf.PIPELINE_FILES`): it runs where lit_ner is not
installed, so these modules import the standard library, numpy, transformers (and torch through
it) and each other, never `lit_ner`. This file itself is not shipped."""
