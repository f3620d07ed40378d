"""The promotion gate's answer check: what users would read, judged on the voice yardstick.

Perplexity alone cannot tell a twin that writes in the author's voice from one that recites
the author's documents (a memorised text has a low perplexity too). So the candidate and
the model served now answer the same held-out requests greedily, through the backend that
would serve them, and the answers are scored by `evals.voice.yardstick.VoiceYardstick`
fitted on the dataset's own split (its training documents: what the twin may have
memorised; its held-out documents: the author's voice the twin never saw). The candidate is
refused when, beside the served model's answers and the author's own held-out passages:
- more of its answers are degenerate (looping, copied prompt, unfinished, another
  language or script, page chrome) than the served model's, beyond a tolerance;
- it recites: the median share of its 8-grams found verbatim in the training documents
  exceeds what the author's own held-out passages share with them (their natural rate for
  that vocabulary) by more than `COPY_MARGIN`, or its longest verbatim run exceeds
  `MAX_COPIED_SPAN` words;
- any answer is mostly page chrome (bylines, share widgets, plugs of the author's corpus);
- more of its answers invent specifics (identifiers, numbers, names found nowhere in the
  request, the context or the author's corpus) than the served model's, beyond a tolerance;
- more of its answers glue or break words ("arecurrently", "metho d":
  `evals.voice.mangled_words`) than the served model's, beyond a tolerance;
- its style is further from the author's held-out profile (Burrows' Delta on
  topic-independent features) than the served model's, by more than `STYLE_MARGIN`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings
    from evals.voice.held_out import HeldOut, Passage

# Points of 8-gram share above the held-out passages' own rate that still count as
# vocabulary, not recitation (gold on the PEPs: a few percent).
COPY_MARGIN = 0.10
# A verbatim run longer than this (words) is a recited sentence, not a shared phrase.
MAX_COPIED_SPAN = 24
# Delta is a mean absolute z-score difference; this much worse counts as losing the voice.
STYLE_MARGIN = 0.10
INVENTED_TOLERANCE = 0.15
# One answer in eight with a mangled word more than the served model's still passes.
MANGLED_TOLERANCE = 0.15


def spread_requests(passages: list[Passage], limit: int) -> list[Passage]:
    """`limit` held-out requests taken round-robin over their documents (consecutive
    passages of one document would judge the twin on one topic)."""
    by_doc: dict[str, list[Passage]] = {}
    for p in passages:
        by_doc.setdefault(p.document_id, []).append(p)
    queues = list(by_doc.values())
    picked: list[Passage] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def _answers(
    ref: str, requests: list[Passage], author: str, cfg: Settings
) -> tuple[Any, list[str]]:
    from core.llm import get_llm
    from core.prompts import twin_messages
    from retrievers.author_corpus import grounding_kwargs

    llm = get_llm(ref)
    # As the served twin answers, less the documents the requests come from (the answer key).
    held_out = frozenset(p.document_id for p in requests if p.document_id)
    grounding = grounding_kwargs(author, leave_out=held_out)
    answers = [
        llm.generate(
            twin_messages(p.instruction, p.context, author),
            max_new_tokens=cfg.EVALS_GATE_ANSWER_MAX_TOKENS,
            temperature=0.0,
            sentence_grace=48,
            **grounding,
        )
        for p in requests
    ]
    return llm, answers


def check_answers(
    result: dict[str, Any],
    refs: dict[str, str],
    held_out: HeldOut,
    author: str,
    cfg: Settings,
    limit: int,
) -> bool:
    """Answer `limit` held-out requests with each model and judge them on the yardstick;
    reasons go to `result["reasons"]`, figures to `result["metrics"]["answers"]`."""
    from core.prompts import twin_messages
    from evals.answer_quality import degenerate_reasons
    from evals.voice.yardstick import AnswerRecord, VoiceYardstick

    reasons: list[str] = result["reasons"]
    requests = spread_requests(held_out.passages, limit)
    training = held_out.train_documents or held_out.corpus
    gold_docs = held_out.test_documents or [p.answer for p in held_out.passages]
    yardstick = VoiceYardstick.fit({author: training}, {author: gold_docs})
    gold = yardstick.score_gold()["summary"]
    # Per role only (readers walk the roles): the author's own figures go beside them.
    report: dict[str, Any] = {}
    result["metrics"]["answers_gold"] = gold
    for role, ref in refs.items():
        try:
            llm, answers = _answers(ref, requests, author, cfg)
        except Exception as exc:  # noqa: BLE001 - a gate refuses, it does not crash promote
            reasons.append(f"answers: {role} {ref} could not answer: {exc}")
            return False
        records = [
            AnswerRecord(author=author, answer=a, request=p.instruction, context=p.context)
            for a, p in zip(answers, requests, strict=True)
        ]
        scored = yardstick.score_answers(records)
        why = [
            degenerate_reasons(
                a,
                prompt="\n\n".join(
                    m["content"] for m in twin_messages(p.instruction, p.context, author)
                ),
                chrome=yardstick.chrome_of(author),
            )
            for a, p in zip(answers, requests, strict=True)
        ]
        summary = dict(scored["summary"])
        summary["degenerate_share"] = sum(bool(w) for w in why) / max(len(answers), 1)
        report[role] = {
            "backend": getattr(llm, "backend", ""),
            "summary": summary,
            "answers": [
                {"request": p.instruction, "text": a, "degenerate": w,
                 **{k: row.get(k) for k in ("copy_longest_span", "copy_8gram_share", "invented",
                                            "chrome_line_share", "mangled")}}
                for a, p, w, row in zip(answers, requests, why, scored["per_answer"], strict=True)
            ],
        }  # fmt: skip
    result["metrics"]["answers"] = report
    role = next(r for r in refs if r != "candidate")
    candidate, reference = report["candidate"]["summary"], report[role]["summary"]
    verdicts = judge(candidate, reference, gold, role, cfg.EVALS_GATE_DEGENERATE_TOLERANCE)
    reasons.extend(text for _, text in verdicts)
    return all(ok for ok, _ in verdicts)


def judge(
    candidate: dict[str, Any],
    reference: dict[str, Any],
    gold: dict[str, Any],
    role: str,
    degenerate_tolerance: float,
) -> list[tuple[bool, str]]:
    """(ok, reason) per rule of the module docstring."""
    out: list[tuple[bool, str]] = []
    n = candidate.get("n", 0)

    def share(value: Any) -> float:
        return float(value or 0.0)

    c_deg, r_deg = share(candidate["degenerate_share"]), share(reference["degenerate_share"])
    ok = c_deg <= r_deg + degenerate_tolerance
    out.append((ok, f"answers: {c_deg:.0%} of the candidate's {n} greedy answers are degenerate "
                    f"vs {r_deg:.0%} of {role}'s ({'ok' if ok else 'worse'}; tolerance "
                    f"{degenerate_tolerance:.0%})"))  # fmt: skip
    natural = share(gold.get("copy_8gram_share_median"))
    copied = share(candidate.get("copy_8gram_share_median"))
    span = int(candidate.get("copy_longest_span_median") or 0)
    ok = copied <= natural + COPY_MARGIN and span <= MAX_COPIED_SPAN
    out.append((ok, f"copying: median {copied:.0%} of the candidate's 8-grams are in the training "
                    f"documents (the author's held-out passages: {natural:.0%}; margin "
                    f"{COPY_MARGIN:.0%}), median longest verbatim run {span} words (limit "
                    f"{MAX_COPIED_SPAN}){'' if ok else ': it recites its training text'}"))  # fmt: skip
    chrome = share(candidate.get("chrome_answer_share"))
    ok = chrome <= share(reference.get("chrome_answer_share"))
    out.append(
        (
            ok,
            f"page chrome: {chrome:.0%} of the candidate's answers are mostly bylines, "
            f"share widgets or plugs of the author's pages ({'ok' if ok else 'refused'})",
        )
    )
    invented, r_invented = (
        share(candidate.get("invented_share")),
        share(reference.get("invented_share")),
    )
    ok = invented <= r_invented + INVENTED_TOLERANCE
    out.append((ok, f"grounding: {invented:.0%} of the candidate's answers invent specifics vs "
                    f"{r_invented:.0%} of {role}'s ({'ok' if ok else 'worse'}; tolerance "
                    f"{INVENTED_TOLERANCE:.0%})"))  # fmt: skip
    mangled, r_mangled = share(candidate.get("mangled_share")), share(reference.get("mangled_share"))
    ok = mangled <= r_mangled + MANGLED_TOLERANCE
    out.append((ok, f"words: {mangled:.0%} of the candidate's answers glue or break words vs "
                    f"{r_mangled:.0%} of {role}'s ({'ok' if ok else 'worse'}; tolerance "
                    f"{MANGLED_TOLERANCE:.0%})"))  # fmt: skip
    c_delta, r_delta = candidate.get("delta_own"), reference.get("delta_own")
    if c_delta is None or r_delta is None:
        out.append((True, "style: not compared (too little held-out text for a profile)"))
    else:
        ok = float(c_delta) <= float(r_delta) + STYLE_MARGIN
        out.append((ok, f"style: Delta to the author's held-out profile {float(c_delta):.3f} vs "
                        f"{float(r_delta):.3f} for {role} (lower is closer; "
                        f"{'ok' if ok else 'further from the voice'})"))  # fmt: skip
    return out
