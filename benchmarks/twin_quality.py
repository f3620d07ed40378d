"""Twin quality on real writing: does the twin write on topic, in the author's voice, fast?

    python benchmarks/twin_quality.py --corpus ../shared/corpora/peps [--holdout 2]
        [--variants qwen-llamacpp,smollm2-llamacpp,...] [--json out.json]

Data: a folder of per-author subfolders of documents (.rst, .md, .txt, .html…). Whole
documents are held out per author (`--holdout` each, chosen by a seeded shuffle); the rest
are ingested through the production pipeline (`python -m ingest add … --author NAME`) into
the benchmark's own DATA_DIR. For every held-out document the twin is asked, with its
author set, to write a passage for the document's title; retrieval (the graph's retrieval
stage, so the author's *other* documents) is run once per request, and every variant
answers the same prompt (`graph.generation_nodes.build_messages`, the served prompt format).

Reported per variant (evals/answer_quality.py): degenerate share; topicality = MiniLM
similarity to the held-out document − mean similarity to the other held-out documents
(the documents' own passages give the ceiling); attribution = share of answers a character
n-gram classifier, trained on the authors' ingested documents, gives to the right author
(chance = 1/authors; the held-out documents' own passages give the ceiling); speed = time
to first token, decode tokens/s, seconds per answer (medians).

A second table is the voice yardstick (`evals/voice/yardstick.py`), which recital cannot
pass: verbatim copy from the author's training documents (longest span, 8-gram share),
attribution on topic-free style features beside the char n-gram one, Burrows' Delta of
each author's answers to their held-out profile and to the others', invented specifics,
page chrome, prose share and wrong language — the gold row (one passage per held-out
document) first. Answers, with each one's degenerate reasons and yardstick details
(`voice`), are written to `<work-dir>/answers-<variant>.jsonl` for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from _corpus import OFFLINE_ENV, author_name, ingest, load_corpus  # noqa: E402 - benchmarks/ is on sys.path

REQUEST = 'Write a passage for a post titled "{title}".'

# name → (model ref, backend, sampling overrides, configuration overrides)
VARIANTS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "qwen-llamacpp": ("offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {}, {}),
    "qwen-llamacpp-greedy": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp",
        {"temperature": 0.0, "repetition_penalty": 1.1}, {},
    ),
    "qwen-llamacpp-t0.7": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp",
        {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}, {},
    ),
    "qwen-llamacpp-norp": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp",
        {"temperature": 0.3, "repetition_penalty": 1.0}, {},
    ),
    # DRY: a penalty on extending a token run already in the context (core/llm/dry.py)
    "qwen-llamacpp-dry": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"dry_multiplier": 0.8}, {},
    ),
    "qwen-llamacpp-dry-k1": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"dry_multiplier": 0.8}, {"k": 1},
    ),
    "qwen-llamacpp-dry0.4": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"dry_multiplier": 0.4}, {},
    ),
    # The served default with the previous retrieval default (dense only): what the
    # query-adaptive retrieval changes in the answers (grounding, topicality).
    "qwen-llamacpp-dense-retrieval": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {}, {"reranker": "dense"},
    ),
    # DRY on one spelling of a word only (before: "arecurrently", "metho d").
    "qwen-llamacpp-dry-one-spelling": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"dry_spellings": False}, {},
    ),
    # The served default without grounded names (core/llm/grounded_names.py): code names,
    # identifiers and numbers free, as before.
    "qwen-llamacpp-ungrounded": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"grounded_names": False}, {},
    ),
    "qwen-llamacpp-prose-names-free": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"prose_names": False}, {},
    ),
    # Qwen2.5-Coder-1.5B-Instruct (22 data packages): better prose, slower.
    "qwen15-llamacpp": ("offline:Qwen2.5-Coder-1.5B-Instruct", "llamacpp", {}, {}),
    "qwen15-llamacpp-nodry": (
        "offline:Qwen2.5-Coder-1.5B-Instruct", "llamacpp", {"dry_multiplier": 0.0}, {},
    ),
    "qwen-llamacpp-nodry": (
        "offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {"dry_multiplier": 0.0}, {},
    ),
    "qwen-llamacpp-k5": ("offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {}, {"k": 5}),
    "qwen-llamacpp-k0": ("offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {}, {"k": 0}),
    "qwen-int8": ("offline:Qwen2.5-Coder-0.5B-Instruct", "torch-int8", {}, {}),
    "qwen-fp32": ("offline:Qwen2.5-Coder-0.5B-Instruct", "torch-fp32", {}, {}),
    "smollm2-llamacpp": ("offline:SmolLM2-135M-Instruct", "llamacpp", {}, {}),
    "smollm2-llamacpp-t0.7": (
        "offline:SmolLM2-135M-Instruct", "llamacpp",
        {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.15}, {},
    ),
    "smollm2-int8": ("offline:SmolLM2-135M-Instruct", "torch-int8", {}, {}),
    "smollm2-fp32": ("offline:SmolLM2-135M-Instruct", "torch-fp32", {}, {}),
    # The author's own passages as few-shot example turns (graph Configuration.style_examples)
    "qwen-llamacpp-fewshot1": ("offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {},
                               {"style_examples": 1}),
    "qwen-llamacpp-fewshot2": ("offline:Qwen2.5-Coder-0.5B-Instruct", "llamacpp", {},
                               {"style_examples": 2}),
    # Each author's own fine-tuned twin (benchmarks/finetune.py --register --config CONFIG
    # registers `registry:CONFIG-<author folder>@candidate`), served from its quantized GGUF.
    "tuned": ("registry:default-{author}@candidate", "llamacpp", {}, {}),
    "tuned-ungrounded": (
        "registry:default-{author}@candidate", "llamacpp", {"grounded_names": False}, {},
    ),
    # Grounded names as before: capitalised words of prose free (core/llm/grounded_names.py).
    "tuned-prose-names-free": (
        "registry:default-{author}@candidate", "llamacpp", {"prose_names": False}, {},
    ),
    # The served default without the recitation guard (core/llm/recitation.py).
    "tuned-reciting": (
        "registry:default-{author}@candidate", "llamacpp", {"max_copied_words": 0}, {},
    ),
    # The served default free to stop at any length (core/llm/min_words.py).
    "tuned-any-length": ("registry:default-{author}@candidate", "llamacpp", {"min_words": 0}, {}),
    "tuned-dry": ("registry:default-{author}@candidate", "llamacpp", {"dry_multiplier": 0.8}, {}),
    # DRY on one spelling of a word only (before: "arecurrently", "metho d").
    "tuned-dry-one-spelling": (
        "registry:default-{author}@candidate", "llamacpp", {"dry_spellings": False}, {},
    ),
    "tuned-fewshot1": ("registry:default-{author}@candidate", "llamacpp", {},
                       {"style_examples": 1}),
    # `benchmarks/finetune.py --config context`: context-grounded pairs (finetune/grounding.py)
    "tuned-context": ("registry:context-{author}@candidate", "llamacpp", {}, {}),
    "tuned-smollm2": ("registry:smollm2-{author}@candidate", "llamacpp", {}, {}),
    # `--config key=value,...` runs register as `custom-<author folder>`.
    "tuned-custom": ("registry:custom-{author}@candidate", "llamacpp", {}, {}),
    "tuned-custom-fewshot1": ("registry:custom-{author}@candidate", "llamacpp", {},
                              {"style_examples": 1}),
}  # fmt: skip


def split(corpus: dict[str, list[Path]], holdout: int, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    train, held = {}, {}
    for author, files in corpus.items():
        shuffled = files[:]
        rng.shuffle(shuffled)
        held[author] = sorted(shuffled[:holdout])
        train[author] = sorted(shuffled[holdout:])
    return train, held


def held_out_documents(held: dict[str, list[Path]], names: dict[str, str]) -> list[dict]:
    from core.domain import User
    from ingest.features.cleaning import clean_text, document_text
    from ingest.importers.local_files import load_file

    docs = []
    for author, files in held.items():
        for path in files:
            raw = load_file(path, User.from_full_name(names[author]))
            text = clean_text(document_text(raw.content))
            docs.append({"author": names[author], "title": raw.title, "path": str(path),
                         "text": text})  # fmt: skip
    return docs


async def build_prompts(docs: list[dict], overrides: dict[str, Any]) -> list[list[dict]]:
    """The served prompt for each request: retrieval stage, then `build_messages`."""
    from core.llm import lc_to_dicts
    from graph.builder import compile_graph
    from graph.configuration import Configuration
    from graph.generation_nodes import build_messages

    retrieval = compile_graph(generate_answer=False)
    prompts = []
    for doc in docs:
        request = REQUEST.format(title=doc["title"])
        configurable = {"author": doc["author"], "expand_n": 0, **overrides}
        out = await retrieval.ainvoke({"query": request}, {"configurable": configurable})
        cfg = Configuration.from_runnable_config({"configurable": configurable})
        state = {"request": request, "context": out.get("context") or [],
                 "filters": out.get("filters") or {}, "messages": []}  # fmt: skip
        if cfg.k == 0:
            state["context"] = []
        prompts.append(lc_to_dicts(build_messages(state, cfg)))
    return prompts


def run_variant(
    name: str, prompts: list[list[dict]], max_new_tokens: int, docs: list[dict]
) -> list[dict]:
    from core.llm import get_llm
    from graph.configuration import Configuration
    from retrievers.author_corpus import grounding_kwargs

    ref_template, backend, sampling, _ = VARIANTS[name]
    grace = Configuration().sentence_grace  # as served
    results = []
    warm: set[str] = set()
    for messages, doc in zip(prompts, docs, strict=True):
        # A per-author ref ({author}: the author's folder) answers that author's documents.
        ref = ref_template.format(author=Path(doc["path"]).parent.name)
        llm = get_llm(ref, backend)
        if ref not in warm:
            llm.generate("Hello", max_new_tokens=2)  # warm-up: first-call allocations
            warm.add(ref)
        started = time.perf_counter()
        first = None
        pieces = []
        # As served (graph.generation_nodes): names grounded in the prompt and the author's
        # writing unless the variant says otherwise.
        served = {**grounding_kwargs(doc["author"]), **sampling}
        for piece in llm.stream(messages, max_new_tokens=max_new_tokens or None,
                                sentence_grace=grace, **served):  # fmt: skip
            if first is None:
                first = time.perf_counter() - started
            pieces.append(piece)
        total = time.perf_counter() - started
        from core.llm import trim_to_sentence

        text = trim_to_sentence("".join(pieces).strip())
        tokens = llm.count_tokens("".join(pieces)) if pieces else 0
        decode = (tokens - 1) / (total - first) if first is not None and total > first else 0.0
        results.append({"answer": text, "ttft_s": first or total, "seconds": total,
                        "prompt": "\n\n".join(m["content"] for m in messages),
                        "tokens": tokens, "tokens_per_s": decode,
                        "prompt_tokens": llm.count_tokens(llm.render(messages))})  # fmt: skip
    return results


def score(
    docs: list[dict],
    variants: dict[str, list[dict]],
    train_texts: list[str],
    train_labels: list[str],
    train_docs: dict[str, list[str]],
    held_docs: dict[str, list[str]],
) -> dict:
    import numpy as np

    from evals.answer_quality import (
        AuthorshipClassifier,
        degenerate_reasons,
        normalize,
        passages,
        topicality,
    )
    from retrievers.encoders import dense_encode

    doc_passages = [passages(d["text"], 1000, limit=40) for d in docs]
    doc_vecs = np.stack([normalize(dense_encode(p).mean(axis=0)) for p in doc_passages])
    classifier = AuthorshipClassifier().fit(train_texts, train_labels)
    report: dict[str, Any] = {"authors": classifier.authors, "documents": len(docs)}

    # Ceiling: the documents' own passages (a middle passage, compared with the other docs).
    gold_top, gold_attr, gold_prob = [], [], []
    for i, (doc, parts) in enumerate(zip(docs, doc_passages, strict=True)):
        middle = parts[len(parts) // 2]
        rest = [p for j, p in enumerate(parts) if j != len(parts) // 2] or parts
        own = normalize(dense_encode(rest).mean(axis=0))
        vecs = doc_vecs.copy()
        vecs[i] = own
        gold_top.append(topicality(dense_encode([middle])[0], vecs, i))
        predicted = classifier.predict(parts)
        gold_attr.append(sum(p == doc["author"] for p in predicted) / len(predicted))
        gold_prob.append(statistics.mean(classifier.probability(parts, [doc["author"]] * len(parts))))
    report["gold"] = {"topicality": statistics.median(gold_top),
                      "attribution": statistics.mean(gold_attr),
                      "author_probability": statistics.mean(gold_prob)}  # fmt: skip

    for name, results in variants.items():
        answers = [r["answer"] for r in results]
        reasons = [degenerate_reasons(a, prompt=r["prompt"]) for a, r in zip(answers, results, strict=True)]
        vecs = dense_encode([a or " " for a in answers])
        tops = [topicality(vecs[i], doc_vecs, i) for i in range(len(answers))]
        predicted = classifier.predict([a or " " for a in answers])
        true_prob = classifier.probability([a or " " for a in answers], [d["author"] for d in docs])
        for r, why, top, who, prob in zip(results, reasons, tops, predicted, true_prob, strict=True):
            r.update(degenerate=why, topicality=top, attributed_to=who, author_probability=prob)
        report[name] = {
            "n": len(answers),
            "degenerate_share": sum(bool(r) for r in reasons) / len(answers),
            "degenerate_reasons": sorted({x for r in reasons for x in r}),
            "topicality": statistics.median(tops),
            "attribution": sum(p == d["author"] for p, d in zip(predicted, docs, strict=True))
            / len(docs),
            "author_probability": statistics.mean(true_prob),
            "ttft_s": statistics.median(r["ttft_s"] for r in results),
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in results),
            "seconds_per_answer": statistics.median(r["seconds"] for r in results),
            "prompt_tokens": statistics.median(r["prompt_tokens"] for r in results),
            "words": statistics.median(len(a.split()) for a in answers),
        }
    report["voice"] = score_voice(docs, variants, train_docs, held_docs, classifier)
    return report


def score_voice(docs: list[dict], variants: dict[str, list[dict]], train_docs: dict,
                held_docs: dict, classifier: Any) -> dict:  # fmt: skip
    """The voice yardstick's summary per variant and for gold; each answer's details go
    into its result row (`voice`), so the answers file carries them."""
    from evals.voice.yardstick import AnswerRecord, VoiceYardstick

    # Whole training documents per author (copy, grounding, chrome); the benchmark's char
    # classifier is reused, so `char attrib` here is the first table's `attrib` model.
    yardstick = VoiceYardstick.fit(train_docs, held_docs, char_classifier=classifier)
    summaries = {"gold": yardstick.score_gold()["summary"]}
    for name, results in variants.items():
        # The whole prompt is what the model was given: request, context, instructions.
        records = [AnswerRecord(d["author"], r["answer"], REQUEST.format(title=d["title"]),
                                r["prompt"]) for d, r in zip(docs, results, strict=True)]  # fmt: skip
        scored = yardstick.score_answers(records)
        for row, detail in zip(results, scored["per_answer"], strict=True):
            row["voice"] = detail
        summaries[name] = scored["summary"]
    return summaries


def print_table(report: dict, default: str) -> None:
    authors = len(report["authors"])
    print(f"\n{report['documents']} held-out documents, {authors} authors "
          f"(attribution chance {1 / authors:.0%})")  # fmt: skip
    head = ("variant", "n", "degen", "topic", "attrib", "P(author)", "TTFT s", "tok/s", "s/ans",
            "prompt", "words")  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    gold = report["gold"]
    print(f"| gold (the documents' own passages) | | | {gold['topicality']:+.3f} | "
          f"{gold['attribution']:.0%} | {gold['author_probability']:.2f} | | | | | |")  # fmt: skip
    for name, r in report.items():
        if not isinstance(r, dict) or "n" not in r:
            continue
        mark = " **(default)**" if name == default else ""
        print(f"| {name}{mark} | {r['n']} | {r['degenerate_share']:.0%} | {r['topicality']:+.3f} "
              f"| {r['attribution']:.0%} | {r['author_probability']:.2f} "
              f"| {r['ttft_s']:.2f} | {r['tokens_per_s']:.1f} "
              f"| {r['seconds_per_answer']:.1f} | {r['prompt_tokens']:.0f} | {r['words']:.0f} |")
        if r["degenerate_reasons"]:
            print(f"|  ↳ reasons: {', '.join(r['degenerate_reasons'])} |")
    from evals.voice.yardstick import summary_table

    print("\nVoice yardstick (copy from training docs, topic-free style, grounding, chrome):")
    print(summary_table(report["voice"], default))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--holdout", type=int, default=2, help="documents held out per author")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="qwen-llamacpp,smollm2-llamacpp,smollm2-int8")
    parser.add_argument("--default", default="qwen-llamacpp", help="marked in the table")
    parser.add_argument("--max-new-tokens", type=int, default=0,
                        help="0 = the served default (LLM_MAX_NEW_TOKENS)")  # fmt: skip
    parser.add_argument("--limit", type=int, default=0, help="answer only the first N requests")
    parser.add_argument("--authors", default="",
                        help="answer only these authors' held-out documents (author folders, "
                             "comma-separated; the split and the classifier still use all)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench" / "twin_quality")
    parser.add_argument("--threads", type=int, default=0, help="LLM_THREADS (0 = all cores)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v and v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(OFFLINE_ENV)
    os.environ["DATA_DIR"] = str(work / "data")
    os.environ.setdefault("MODELS_CACHE_DIR", str(ROOT / "data" / "models"))
    if args.threads:
        os.environ["LLM_THREADS"] = str(args.threads)
    from core.logs import setup_cli_logging
    from core.settings import reset_settings

    setup_cli_logging()
    reset_settings()

    corpus = load_corpus(args.corpus.resolve())
    train, held = split(corpus, args.holdout, args.seed)
    names = {a: author_name(a, files) for a, files in corpus.items()}
    ingest(work, train, names)
    if args.authors:
        wanted = set(args.authors.split(","))
        held = {a: files for a, files in held.items() if a in wanted}
    held_all = held_out_documents(held, names)
    docs = held_all[: args.limit] if args.limit else held_all

    from core.domain import User
    from evals.answer_quality import passages
    from ingest.features.cleaning import clean_text, document_text
    from ingest.importers.local_files import load_file

    train_texts, train_labels = [], []
    train_docs: dict[str, list[str]] = {}
    for author, files in train.items():
        for path in files:
            raw = load_file(path, User.from_full_name(names[author]))
            text = clean_text(document_text(raw.content))
            train_docs.setdefault(names[author], []).append(text)
            for p in passages(text, 1000, limit=60):
                train_texts.append(p)
                train_labels.append(names[author])
    held_docs: dict[str, list[str]] = {}
    for doc in held_all:  # gold: the answered authors' held-out documents, also past --limit
        held_docs.setdefault(doc["author"], []).append(doc["text"])

    chosen = [v for v in args.variants.split(",") if v]
    prompt_sets: dict[str, list] = {}
    results = {}
    for name in chosen:
        overrides = VARIANTS[name][3]
        key = json.dumps(overrides, sort_keys=True)
        if key not in prompt_sets:
            prompt_sets[key] = asyncio.run(build_prompts(docs, overrides))
        started = time.perf_counter()
        results[name] = run_variant(name, prompt_sets[key], args.max_new_tokens, docs)
        print(f"{name}: {len(docs)} answers in {time.perf_counter() - started:.0f}s", flush=True)
    report = score(docs, results, train_texts, train_labels, train_docs, held_docs)
    for name, rows in results.items():
        with open(work / f"answers-{name}.jsonl", "w") as fh:
            for doc, row in zip(docs, rows, strict=True):
                fh.write(json.dumps({"title": doc["title"], "author": doc["author"], **row}) + "\n")
    print_table(report, args.default)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
