"""Voice evaluation: does the candidate model write more like the author than the base does?

Two perplexities on the author's held-out passages (lower = the text is less surprising to
the model):
- `*_perplexity` — on the ANSWER tokens only, under the exact prompt the model is trained
  and served with (`core.prompts.render_training_example`: system prompt, instruction,
  context). Also per WORD of those answers (`template_word`): the NLL of a text does not
  depend on how a tokenizer cuts it, so this compares models with different tokenizers —
  the number the gate compares (the served Qwen against a fine-tuned SmolLM2, say).
- `raw_perplexity` — on the passage text alone, no prompt (language-model fit to the prose).
Perplexity is pooled over the corpus: exp(total NLL / total scored tokens).

Plus style statistics (`evals.style`) of a few greedy samples from each model, compared
with the author's own text.

Held-out passages come from the latest instruct dataset version's "test" split of that
author (`DATA_DIR/datasets/instruct/…`, written by `python -m finetune dataset build`), or
from `--passages FILE` (JSONL with `answer`/`text`/`content` and optional `instruction`,
`context`; or plain text, passages separated by blank lines or `---` lines).

The pieces: `held_out` (the passages), `model_refs` (which models), `passage_perplexity`,
`style_samples`, and `evaluate` (`run_voice_eval`, the report). Callers use the package
name (`from evals import voice`; `evals.voice.run_voice_eval`), so it hands those on.
"""

from evals.voice.evaluate import run_voice_eval
from evals.voice.held_out import (
    GENERIC_INSTRUCTION,
    HeldOut,
    Passage,
    VoiceEvalError,
    find_instruct_dataset,
    load_dataset_passages,
    load_passages_file,
)
from evals.voice.model_refs import DEFAULT_MODEL_NAME, ModelRefs, resolve_refs
from evals.voice.passage_perplexity import (
    DEFAULT_MAX_LENGTH,
    model_perplexities,
    raw_nll,
    template_nll,
)
from evals.voice.style_samples import style_report

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MODEL_NAME",
    "GENERIC_INSTRUCTION",
    "HeldOut",
    "ModelRefs",
    "Passage",
    "VoiceEvalError",
    "find_instruct_dataset",
    "load_dataset_passages",
    "load_passages_file",
    "model_perplexities",
    "raw_nll",
    "resolve_refs",
    "run_voice_eval",
    "style_report",
    "template_nll",
]
