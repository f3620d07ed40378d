"""`python -m evals voice|rag|retrieval|gate [--json]` — evaluations of the twin.

  voice      perplexity of base vs candidate (vs production) on the author's held-out
             passages + style statistics of generated samples
  rag        the RAG graph on a small question set with known sources: retrieval recall@k /
             MRR and Opik's Hallucination (→ faithfulness) and AnswerRelevance, judged by
             the OpenAI-compatible server when LLM_BASE_URL is set, else the local model
             (labelled "local-weak")
  retrieval  the retriever alone on the full retrieval eval set (recall@5, MRR, latency)
  gate       may registry version NAME@VERSION be promoted to `accepted`? (exit 0 = yes,
             1 = refused, with the reasons — also when it could not be evaluated)

Results are also written as JSON under DATA_DIR/evals/ (and to the experiment tracker and
Opik when configured). Heavy imports happen inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def _json_default(value: Any) -> Any:
    return str(value)


def _clean(value: Any) -> Any:
    """NaN/inf → null so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _emit(report: dict[str, Any], as_json: bool, summary: list[str]) -> None:
    if as_json:
        print(json.dumps(_clean(report), indent=2, default=_json_default))
    else:
        print("\n".join(summary))


def _fmt(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def cmd_voice(args: argparse.Namespace) -> int:
    from evals.report import record
    from evals.voice import run_voice_eval

    report = run_voice_eval(
        author=args.author,
        candidate=args.candidate,
        base=args.base,
        name=args.name,
        passages_file=args.passages,
        limit=args.limit,
        n_samples=args.samples,
        max_new_tokens=args.max_new_tokens,
        include_production=not args.no_production,
    )
    report["recorded"] = record("voice", report, params={"candidate": report["candidate"]})
    summary = [
        f"voice eval of {report['author']} on {report['n_passages']} held-out passages "
        f"({report['passages_source']}, {report['n_tokens']} answer tokens)",
        f"  base       {report['base']}: perplexity {_fmt(report['base_perplexity'])}",
        f"  candidate  {report['candidate']}: perplexity {_fmt(report['candidate_perplexity'])}"
        f"  (relative drop {_fmt(report['relative_drop'])})",
    ]
    if report.get("production"):
        summary.append(
            f"  production {report['production']}: perplexity "
            f"{_fmt(report['production_perplexity'])}"
        )
    for role in ("candidate", "base"):
        style = (report.get("style") or {}).get(role)
        if style:
            summary.append(f"  style distance to the author ({role}): {style['distance']}")
    _emit(report, args.json, summary)
    return 0


def cmd_rag(args: argparse.Namespace) -> int:
    from evals.rag import run_rag_eval
    from evals.report import record

    report = run_rag_eval(
        limit=args.limit,
        k=args.k,
        model=args.model,
        judge=not args.no_judge,
        judge_model=args.judge_model,
        max_new_tokens=args.max_new_tokens,
    )
    report["recorded"] = record(
        "rag",
        report,
        params={"model": report["model"], "judge": report["judge"], "limit": args.limit},
        items=[
            {"input": i["question"], "output": i["answer"], "scores": i["scores"]}
            for i in report.get("items", [])
        ],
    )
    summary = [
        f"RAG eval of {report['model']} on {report['n_questions']} questions "
        f"(judge: {report['judge']})",
        f"  recall@{report['k']} {_fmt(report['recall@k'])}  MRR {_fmt(report['mrr'])}",
        f"  faithfulness {_fmt(report['faithfulness'])}  answer relevance "
        f"{_fmt(report['answer_relevance'])}  unscored {report['unscored']}",
    ]
    _emit(report, args.json, summary)
    return 0


def cmd_retrieval(args: argparse.Namespace) -> int:
    from evals.report import record
    from evals.retrieval import run_retrieval_eval

    report = run_retrieval_eval(variant=args.variant, k=args.k)
    report["recorded"] = record("retrieval", report, params={"variant": args.variant, "k": args.k})
    summary = [f"retrieval eval ({args.variant}):"] + [
        f"  {key}: {_fmt(value)}" for key, value in report.items() if key != "recorded"
    ]
    _emit(report, args.json, summary)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from evals.gate import evaluate_candidate

    report = evaluate_candidate(
        args.name,
        args.version,
        min_improvement=args.min_improvement,
        rag_tolerance=args.rag_tolerance,
        rag_limit=args.rag_limit,
        passages_file=args.passages,
    )
    _emit(report, args.json, report["reasons"])
    return 0 if report["promote"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evals",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    voice = sub.add_parser("voice", help="perplexity + style: base vs candidate vs production")
    voice.add_argument("--author", help="the author whose held-out passages to score")
    voice.add_argument(
        "--candidate",
        help="model to evaluate: registry ref, folder or offline:… "
        "(default: the registry's `candidate` version, else `accepted`)",
    )
    voice.add_argument("--base", help="base model ref (default: the candidate's base_model)")
    voice.add_argument("--name", default="twin", help="registry model name (default twin)")
    voice.add_argument(
        "--passages", help="held-out passages file (JSONL or text) instead of the dataset"
    )
    voice.add_argument("--limit", type=int, default=64, help="max held-out passages (64)")
    voice.add_argument("--samples", type=int, default=3, help="generated style samples (3; 0=off)")
    voice.add_argument("--max-new-tokens", type=int, default=96, help="per style sample (96)")
    voice.add_argument("--no-production", action="store_true", help="skip the accepted model")
    voice.add_argument("--json", action="store_true", help="print the full report as JSON")
    voice.set_defaults(func=cmd_voice)

    rag = sub.add_parser("rag", help="RAG graph: retrieval recall/MRR + judged faithfulness")
    rag.add_argument("--limit", type=int, default=5, help="questions to run (5)")
    rag.add_argument("-k", "--k", type=int, default=5, help="context size (5)")
    rag.add_argument("--model", help="generation model ref (default LLM_MODEL)")
    rag.add_argument("--judge-model", help="judge model ref (default: see module docs)")
    rag.add_argument("--no-judge", action="store_true", help="retrieval metrics only")
    rag.add_argument("--max-new-tokens", type=int, default=96, help="answer length (96)")
    rag.add_argument("--json", action="store_true", help="print the full report as JSON")
    rag.set_defaults(func=cmd_rag)

    retrieval = sub.add_parser("retrieval", help="retriever only: recall@5, MRR, latency")
    retrieval.add_argument("--variant", default="default", help="retrieval variant (default)")
    retrieval.add_argument("-k", "--k", type=int, default=5, help="cut-off (5)")
    retrieval.add_argument("--json", action="store_true", help="print the report as JSON")
    retrieval.set_defaults(func=cmd_retrieval)

    gate = sub.add_parser("gate", help="promotion decision for a registry version")
    gate.add_argument("--name", default="twin", help="registry model name (default twin)")
    gate.add_argument("--version", required=True, help="the candidate version")
    gate.add_argument(
        "--min-improvement",
        type=float,
        help="required relative perplexity improvement (EVALS_GATE_MIN_IMPROVEMENT, 0)",
    )
    gate.add_argument(
        "--rag-tolerance",
        type=float,
        help="allowed absolute drop of RAG metrics (EVALS_GATE_RAG_TOLERANCE, 0.05)",
    )
    gate.add_argument(
        "--rag-limit", type=int, help="RAG questions, 0 skips the check (EVALS_GATE_RAG_LIMIT, 3)"
    )
    gate.add_argument("--passages", help="held-out passages file instead of the dataset")
    gate.add_argument("--json", action="store_true", help="print the decision as JSON")
    gate.set_defaults(func=cmd_gate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.settings import settings_or_exit

    settings_or_exit()  # a bad setting: one line and exit 2, not a traceback
    from core.logs import setup_cli_logging
    from core.telemetry import disable_third_party_telemetry

    disable_third_party_telemetry()  # the judges and reports use Opik
    setup_cli_logging(args.verbose)
    from core.models import ModelNotAvailable
    from evals.voice import VoiceEvalError

    expected: tuple[type[BaseException], ...] = (VoiceEvalError, ModelNotAvailable)
    try:
        from evals.rag import RagEvalError
        from retrievers.store import VectorStoreLocked

        expected += (RagEvalError, VectorStoreLocked)
    except ImportError:  # pragma: no cover - partial installs
        pass
    try:
        return args.func(args)
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
