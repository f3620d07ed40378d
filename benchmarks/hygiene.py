"""Corpus hygiene: how much page chrome cleaning removes, and how much of the author's own
text it loses, on folders with gold labels written by `make_messy_corpus.py`.

    .venv/bin/python benchmarks/make_messy_corpus.py --corpus ../shared/corpora/peps \
        --out data/bench/hygiene
    .venv/bin/python benchmarks/hygiene.py data/bench/hygiene/messy data/bench/hygiene/clean

Each folder holds per-author subfolders of `.md` files with `.gold.json` sidecars. Every
file becomes the warehouse document an export importer stores (an article whose text is the
file, on the sidecar's platform) and goes through what `ingest sync` does with it:
`fit_chrome` over all documents (per author and platform), then `clean_document(raw,
chrome)`. The detectors compared: the generic line patterns alone (no corpus), and the
corpus-level detector at several `min_documents`/`min_share` settings.

Lines are matched by their `normalize_line` key (after the cleaner's unicode folding), per
document as multisets: a gold line is kept when the output still holds a line with its key.
Columns: chrome removed (recall over gold chrome lines), precision (chrome lines among all
removed lines), prose lines/words lost (share of the gold author lines/words removed) and
the documents that lost any prose line. No model is loaded: this is regexes and counting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS: list[tuple[int, float] | None] = [
    None, (2, 0.1), (2, 0.2), (3, 0.1), (3, 0.2), (3, 0.3), (3, 0.5), (5, 0.3),
]  # fmt: skip


def load_folder(folder: Path) -> list[tuple[object, list[str], set[int]]]:
    """[(raw document, its lines, the numbers of its gold chrome lines)]."""
    from core.domain import Category, RawDocument, User, document_id_for_link

    docs = []
    for path in sorted(folder.glob("*/*.md")):
        gold = json.loads(path.with_suffix(".gold.json").read_text(encoding="utf-8"))
        text = path.read_text(encoding="utf-8")
        author = User.from_full_name(gold["author"])
        link = f"https://{gold['platform']}.example/{path.parent.name}/{path.stem}"
        raw = RawDocument(
            _id=document_id_for_link(gold["platform"], link), author_id=author.id,
            author_full_name=author.full_name, platform=gold["platform"],
            category=Category.ARTICLES, link=link, title=path.stem, content={"text": text},
        )  # fmt: skip
        docs.append((raw, text.split("\n"), set(gold["chrome_lines"])))
    return docs


def _key(line: str) -> str:
    from ingest.features.boilerplate import normalize_line
    from ingest.features.cleaning import normalize_unicode

    folded = normalize_unicode(line)
    return normalize_line(folded) or folded.strip()  # "·" has no words: match it as is


def score(docs: list, setting: tuple[int, float] | None) -> dict[str, object]:
    from ingest.features.cleaning import clean_document, fit_chrome

    started = time.perf_counter()
    chromes = fit_chrome([raw for raw, _, _ in docs], *setting) if setting else {}
    fit_s = time.perf_counter() - started
    totals: Counter[str] = Counter()
    lost_lines: Counter[str] = Counter()
    for raw, lines, gold in docs:
        out = Counter(_key(line) for line in clean_document(raw, chromes.get(raw.id)).content.split("\n") if line.strip())
        chrome_in: Counter[str] = Counter()
        prose_in: Counter[str] = Counter()
        for number, line in enumerate(lines):
            if line.strip():
                (chrome_in if number in gold else prose_in)[_key(line)] += 1
        doc_lost = 0
        for key in chrome_in.keys() | prose_in.keys():
            prose_kept = min(prose_in[key], out[key])
            chrome_kept = min(chrome_in[key], out[key] - prose_kept)
            lost = prose_in[key] - prose_kept
            totals["chrome"] += chrome_in[key]
            totals["chrome_removed"] += chrome_in[key] - chrome_kept
            totals["prose"] += prose_in[key]
            totals["prose_lost"] += lost
            words = len(key.split())
            totals["prose_words"] += prose_in[key] * words
            totals["prose_words_lost"] += lost * words
            doc_lost += lost
            if lost:
                lost_lines[key] += lost
        totals["docs_lost"] += doc_lost > 0
    removed = totals["chrome_removed"] + totals["prose_lost"]
    learned = {id(c): c for c in chromes.values()}.values()
    return {
        "setting": "generic patterns only" if setting is None else f"corpus min_documents={setting[0]} min_share={setting[1]}",
        "chrome_removed": totals["chrome_removed"] / totals["chrome"] if totals["chrome"] else None,
        "precision": totals["chrome_removed"] / removed if removed else None,
        "prose_lines_lost": totals["prose_lost"] / max(totals["prose"], 1),
        "prose_words_lost": totals["prose_words_lost"] / max(totals["prose_words"], 1),
        "docs_losing_prose": f"{totals['docs_lost']}/{len(docs)}",
        "learned_lines": sum(len(c.lines) for c in learned),
        "learned_blocks": sum(len(c.blocks) for c in learned),
        "fit_s": round(fit_s, 2),
        "gold": {"chrome_lines": totals["chrome"], "prose_lines": totals["prose"]},
        "prose_lost_top": lost_lines.most_common(8),
    }


def _pct(value: object) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders from make_messy_corpus.py")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    print("| corpus | detector | chrome removed | precision | prose lines lost | prose words lost "
          "| docs losing prose | learned lines/blocks | fit s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        docs = load_folder(folder)
        for setting in SETTINGS:
            row = score(docs, setting) | {"corpus": folder.name, "documents": len(docs)}
            results.append(row)
            print(f"| {folder.name} ({len(docs)}) | {row['setting']} | {_pct(row['chrome_removed'])} "
                  f"| {_pct(row['precision'])} | {_pct(row['prose_lines_lost'])} "
                  f"| {_pct(row['prose_words_lost'])} | {row['docs_losing_prose']} "
                  f"| {row['learned_lines']}/{row['learned_blocks']} | {row['fit_s']} |", flush=True)  # fmt: skip
    print("\nprose lines lost most often (normalised), per corpus and setting:")
    for row in results:
        if row["prose_lost_top"]:
            top = "; ".join(f"{key[:60]!r}×{n}" for key, n in row["prose_lost_top"])  # type: ignore[union-attr]
            print(f"- {row['corpus']}, {row['setting']}: {top}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
