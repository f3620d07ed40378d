"""Article extraction: the crawler pipeline vs trafilatura vs the old DOM heuristics, on gold text.

Page groups (each page: saved HTML, the URL it was served at, gold Markdown of its main text):

- `site`: the crawler tests' saved Medium / Substack / blog pages (`tests/fixtures/site`), gold
  written by hand in `tests/fixtures/extraction/site/*.gold.md`;
- `layouts`: eleven page layouts (WordPress, Ghost, Hugo, Jekyll, Blogger, dev.to, a docs
  theme, a newsletter, Medium, Substack, LinkedIn Pulse) around real prose from public-domain
  PEPs, with comments, related posts, sidebars and banners in other PEPs' prose
  (`tests/fixtures/extraction/layouts`, built by `benchmarks/make_extraction_pages.py`);
- `newspaper4k` (with `--pages DIR`): real saved news pages with their expected article text,
  the test data of the newspaper4k sdist (not copied into this repository; get it with
      .venv/bin/pip download --no-deps --no-binary :all: newspaper4k==0.9.6 -d data/bench
      tar xzf data/bench/newspaper4k-0.9.6.tar.gz -C data/bench
  and pass `--pages data/bench/newspaper4k-0.9.6/tests/data`). Only pages whose language
  separates words with spaces are used (word-token F1 means nothing for Chinese or Thai).

Extractors: `crawler` is what `crawl_url` does now (dispatcher → platform crawler →
`ArticleCrawler.from_page`); `dom-heuristics@REV` is the same pipeline as it was at git
revision REV (the hand-written extractor, loaded from `git show`, nothing checked out);
`trafilatura*` is `trafilatura.extract(..., output_format="markdown")` on the whole page.

Metrics per page: bag-of-words token precision / recall / F1 of the main text against the
gold (lower-cased `\\w+` tokens with counts; link targets are not words), and the share of the
gold's headings, fenced-code lines, code-block languages, list items and link targets that
the output keeps as such. The table shows medians per group (and the worst F1).

    .venv/bin/python benchmarks/extraction.py [--pages DIR] [--baseline-rev REV] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures" / "extraction"
# The last revision with the hand-written DOM extractor (ingest/crawlers/extract.py, 503 lines).
BASELINE_REV = "055bc1c49117f6adcc4e95570507bdc814580688"
# newspaper4k test pages in languages that put spaces between words.
NEWSPAPER_PAGES = (
    "article_with_br", "article_with_divs", "cleveland.com1", "cnn_001", "cnn_002",
    "cnn_article", "cnn_test_nlp", "fox13now_001", "time_001", "video_article_01",
    "video_article_02", "wired_001", "yna_co_kr", "spanish_article", "latvian_article",
    "arabic_article",
)  # fmt: skip
Page = dict[str, str]
Extractor = Callable[[str, str], str]

# ------------------------------------------------------------------------------ metrics

_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```([\w#+.-]*)[^\n]*\n(.*?)^```", re.M | re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.+)$", re.M)


def words(text: str) -> Counter[str]:
    """Lower-cased word tokens with counts; `[text](url)` counts as its text only."""
    return Counter(re.findall(r"\w+", _LINK.sub(r"\1", text).lower()))


def token_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    pred, ref = words(predicted), words(gold)
    overlap = sum((pred & ref).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(ref.values()) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", _LINK.sub(r"\1", text).lower()))


def _code_blocks(text: str) -> list[tuple[str, list[str]]]:
    return [(m[1], [ln.strip() for ln in m[2].splitlines() if ln.strip()])
            for m in _FENCE.finditer(text)]  # fmt: skip


def _share(found: int, total: int) -> float | None:
    return found / total if total else None


def structure(predicted: str, gold: str) -> dict[str, float | None]:
    """Share of the gold's headings, code lines, code languages, list items and links kept."""
    pred_heads = {_plain(h) for h in _HEADING.findall(predicted)}
    gold_heads = [_plain(h) for h in _HEADING.findall(gold)]
    pred_code = _code_blocks(predicted)
    pred_lines = Counter(ln for _, lines in pred_code for ln in lines)
    gold_code = _code_blocks(gold)
    gold_lines = Counter(ln for _, lines in gold_code for ln in lines)
    with_lang = [(lang, lines) for lang, lines in gold_code if lang and lines]
    lang_kept = sum(
        any(p_lang == lang and lines[0] in p_lines for p_lang, p_lines in pred_code)
        for lang, lines in with_lang
    )
    outside = _FENCE.sub("", predicted)
    pred_items = {_plain(i) for i in _ITEM.findall(outside)}
    gold_items = [_plain(i) for i in _ITEM.findall(_FENCE.sub("", gold))]
    pred_links = {url for _, url in _LINK.findall(predicted)} | set(
        re.findall(r"https?://[^\s)>\]]+", outside)
    )
    gold_links = [url for _, url in _LINK.findall(gold)]
    return {
        "headings": _share(sum(h in pred_heads for h in gold_heads), len(gold_heads)),
        "code": _share(sum((pred_lines & gold_lines).values()), sum(gold_lines.values())),
        "code_lang": _share(lang_kept, len(with_lang)),
        "lists": _share(sum(i in pred_items for i in gold_items), len(gold_items)),
        "links": _share(sum(u in pred_links for u in gold_links), len(gold_links)),
    }


# ------------------------------------------------------------------------------ pages


def load_pages(newspaper_dir: Path | None) -> list[Page]:
    pages: list[Page] = []
    for group in ("site", "layouts"):
        folder = FIXTURES / group
        for name, entry in json.loads((folder / "index.json").read_text()).items():
            html_path = folder / entry.get("html", f"{name}.html")
            pages.append({
                "group": group, "name": name, "url": entry["url"],
                "html": html_path.read_text(encoding="utf-8"),
                "gold": (folder / f"{name}.gold.md").read_text(encoding="utf-8"),
            })  # fmt: skip
    if newspaper_dir is not None:
        for name in NEWSPAPER_PAGES:
            html_path = newspaper_dir / "html" / f"{name}.html"
            gold_path = newspaper_dir / "txt" / f"{name}.txt"
            if not (html_path.exists() and gold_path.exists()):
                continue
            meta_path = newspaper_dir / "metadata" / f"{name}.json"
            meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
            url = meta.get("url") or meta.get("canonical_link") or ""
            if not url.startswith("http"):
                url = f"https://news.example.com/{name}"
            pages.append({
                "group": "newspaper4k", "name": name, "url": url,
                "html": html_path.read_text(encoding="utf-8", errors="replace"),
                "gold": gold_path.read_text(encoding="utf-8"),
            })  # fmt: skip
    return pages


# ------------------------------------------------------------------------------ extractors


def crawler_extractor(package: str = "ingest.crawlers") -> Extractor:
    """The article crawlers' own path, as `crawl_url` takes it, without the network."""
    from core.domain import RawDocument, User
    from core.safe_fetch.result import FetchResult

    crawlers = importlib.import_module(package)
    extract = importlib.import_module(f"{package}.extract")
    article = importlib.import_module(f"{package}.article")
    author = User.from_full_name("Bench Mark")

    def run(html: str, url: str) -> str:
        crawler = crawlers.dispatcher.crawler_for(url)
        if not isinstance(crawler, article.ArticleCrawler):
            crawler = crawlers.GenericArticleCrawler()
        result = FetchResult(url=url, final_url=url, status=200, headers={},
                             content=html.encode("utf-8"), content_type="text/html",
                             charset="utf-8")  # fmt: skip
        for item in crawler.from_page(url, result, extract.parse_html(html), author):
            if isinstance(item, RawDocument):
                return item.content["text"]
        return ""

    return run


def baseline_extractor(rev: str) -> Extractor | None:
    """The crawler pipeline as it was at `rev`, imported from `git show` under another name."""
    package = "_crawlers_at_rev"
    target = Path(tempfile.mkdtemp(prefix="extract-baseline-")) / package
    target.mkdir()
    for module in ("__init__", "extract", "article", "base", "generic", "medium", "substack",
                   "linkedin", "github"):  # fmt: skip
        shown = subprocess.run(["git", "show", f"{rev}:ingest/crawlers/{module}.py"], cwd=ROOT,
                               capture_output=True, text=True)  # fmt: skip
        if shown.returncode != 0:
            print(f"baseline skipped: {shown.stderr.strip()}", file=sys.stderr)
            return None
        (target / f"{module}.py").write_text(shown.stdout.replace("ingest.crawlers", package))
    sys.path.insert(0, str(target.parent))
    return crawler_extractor(package)


def trafilatura_extractor(**options: Any) -> Extractor:
    import trafilatura

    def run(html: str, url: str) -> str:
        return trafilatura.extract(
            html, url=url, output_format="markdown", include_formatting=True,
            include_links=True, include_tables=True, include_comments=False, **options,
        ) or ""  # fmt: skip

    return run


# ------------------------------------------------------------------------------ report

COLUMNS = ("precision", "recall", "f1", "headings", "code", "code_lang", "lists", "links")


def evaluate(pages: list[Page], extractors: dict[str, Extractor]) -> list[dict[str, Any]]:
    rows = []
    for page in pages:
        for name, extractor in extractors.items():
            start = time.perf_counter()
            try:
                text = extractor(page["html"], page["url"])
            except Exception as exc:  # noqa: BLE001 - a crash scores zero, and is shown
                print(f"{name} failed on {page['name']}: {exc!r}", file=sys.stderr)
                text = ""
            elapsed = time.perf_counter() - start
            precision, recall, f1 = token_prf(text, page["gold"])
            rows.append({"group": page["group"], "page": page["name"], "extractor": name,
                         "precision": precision, "recall": recall, "f1": f1,
                         "ms": 1000 * elapsed, **structure(text, page["gold"])})  # fmt: skip
    return rows


def _median(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present):.2f}" if present else "–"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| group (pages) | extractor | P | R | F1 | worst F1 | headings | code lines "
            "| code lang | list items | links | ms/page |")  # fmt: skip
    out = [head, "|" + "---|" * 12]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    for group in groups:
        in_group = [r for r in rows if r["group"] == group]
        pages = len({r["page"] for r in in_group})
        for name in dict.fromkeys(r["extractor"] for r in in_group):
            mine = [r for r in in_group if r["extractor"] == name]
            cells = [_median([r[c] for r in mine]) for c in COLUMNS]
            worst = f"{min(r['f1'] for r in mine):.2f}"
            ms = f"{statistics.median(r['ms'] for r in mine):.0f}"
            out.append(f"| {group} ({pages}) | {name} | " + " | ".join(cells[:3]) + f" | {worst} | "
                       + " | ".join(cells[3:]) + f" | {ms} |")  # fmt: skip
    return "\n".join(out)


def per_page(rows: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(r["extractor"] for r in rows))
    out = ["| group | page | " + " | ".join(f"F1 {n}" for n in names) + " |",
           "|" + "---|" * (2 + len(names))]  # fmt: skip
    for key in dict.fromkeys((r["group"], r["page"]) for r in rows):
        f1 = {r["extractor"]: r["f1"] for r in rows if (r["group"], r["page"]) == key}
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(f"{f1[n]:.2f}" for n in names) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, help="newspaper4k's tests/data folder (see above)")
    parser.add_argument(
        "--baseline-rev",
        default=BASELINE_REV,
        help="git revision of the hand-written extractor ('' to skip)",
    )
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="only trafilatura's defaults, not favor_precision/favor_recall",
    )
    parser.add_argument("--per-page", action="store_true", help="also print F1 per page")
    parser.add_argument("--json", type=Path, help="write every page's scores here")
    args = parser.parse_args()

    pages = load_pages(args.pages)
    extractors: dict[str, Extractor] = {"crawler (now)": crawler_extractor()}
    if args.baseline_rev and (baseline := baseline_extractor(args.baseline_rev)):
        extractors[f"dom-heuristics@{args.baseline_rev[:7]}"] = baseline
    extractors["trafilatura"] = trafilatura_extractor()
    if not args.no_variants:
        extractors["trafilatura precision"] = trafilatura_extractor(favor_precision=True)
        extractors["trafilatura recall"] = trafilatura_extractor(favor_recall=True)
    rows = evaluate(pages, extractors)
    print(table(rows))
    if args.per_page:
        print()
        print(per_page(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
