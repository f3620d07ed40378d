"""Render a corpus of per-author folders as messy exports: real prose wrapped in the chrome
that Substack, Medium and LinkedIn exports and scraped posts carry, with gold labels.

Each document of `--corpus` (e.g. ../shared/corpora/peps: reStructuredText PEPs, rendered to
Markdown by the importer's own `extract_rst`) becomes one Markdown export of its author:
the body as is, with the platform's chrome around it — byline, date, "N min read",
like/comment counts, share widget words on their own lines ("Facebook", "Twitter", "Note",
"Other", "Share"), a subscribe or course plug paragraph repeated in every post, a sign-off,
"Check out the full lesson on Medium" — varying per post like real exports do (dates,
counts, an element left out here and there, a course plug only in the later posts). Each author writes on one platform, except
one author split over two (their chrome is fitted per platform).

    .venv/bin/python benchmarks/make_messy_corpus.py --corpus ../shared/corpora/peps \
        --out data/bench/hygiene

writes `<out>/messy/<author>/<doc>.md` and `<out>/clean/<author>/<doc>.md` (the body alone),
each with a `<doc>.gold.json` sidecar: the author's name, the platform, and the 0-based
numbers of the file's chrome lines (every other non-blank line is the author's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STYLES = ("substack", "medium", "linkedin")


def _date(rng: random.Random) -> str:
    day = date(2022, 1, 1) + timedelta(days=rng.randrange(900))
    return f"{day:%b} {day.day}, {day.year}"


def _count(rng: random.Random, high: int = 400) -> str:
    return str(rng.randrange(1, high))


def _chrome(style: str, name: str, rng: random.Random, late: bool) -> tuple[list[str], list[str]]:
    """(lines before the body, lines after it) of one post; "" is a blank line. `late`: a
    post from after the author started a course plug (in the later ~45% of posts only)."""
    first, last = name.split()[0], name.split()[-1]
    letter = f"{last}'s Notes"
    slug = last.lower()
    maybe = lambda p, *lines: list(lines) if rng.random() < p else []  # noqa: E731
    if style == "substack":
        head = [name, _date(rng), *maybe(0.8, _count(rng)), *maybe(0.6, _count(rng, 40)), "Share", ""]
        tail = [
            "", f"Thanks for reading {letter}! Subscribe for free to receive new posts and support my work.",
            "", f"[Subscribe](https://{slug}.substack.com/subscribe?utm_source=post&utm_campaign=p{rng.randrange(99)})",
            "", f"{letter} is a reader-supported publication. To receive new posts and",
            "support my work, consider becoming a free or paid subscriber.",
            "", _count(rng), "", "Facebook", "", "Twitter", "", "Note", "", "Other", "", "Share",
            "", "Check out the full lesson on Medium",
            "", f"Thanks for reading, and see you next week. {first}",
        ]
    elif style == "medium":
        head = [name, "", "Follow", "", f"{rng.randrange(3, 25)} min read", "", "·", "",
                _date(rng), "", *maybe(0.9, _count(rng, 900), ""), *maybe(0.7, _count(rng, 30), ""),
                "Listen", "", "Share", ""]  # fmt: skip
        tail = [
            "", _count(rng, 900), "", f"Written by {name}", "", f"{_count(rng, 5000)} Followers",
            "", "Python core developer. I write about the language, its packaging and its",
            "community, one proposal at a time.", "", f"More from {name}",
        ]
    else:  # linkedin
        head = [name, "Python core developer | CPython | Writing about the language",
                f"{rng.randrange(1, 6)}{rng.choice('dw')} • {rng.choice(['Edited', 'Follow'])}", ""]  # fmt: skip
        tail = [
            "", "♻️ Repost if you found this useful.",
            f"Follow {name} for more posts on Python.", "",
            "Want to go deeper? The free Python internals course walks through it end to end:",
            "lesson by lesson, with code you can run.", "",
            "Check out the full lesson on Medium", "",
            f"{_count(rng)} likes", *maybe(0.7, f"{_count(rng, 60)} comments"),
            *maybe(0.5, f"{_count(rng, 30)} reposts"), "", "Like", "Comment", "Repost", "Send",
        ]
    if late:
        tail += ["", f"P.S. My Python internals course is now open for enrolment: "
                     f"https://course.example/{slug}?ref=post{rng.randrange(99)}"]  # fmt: skip
    return head, tail


def render(body: str, title: str, style: str, name: str, rng: random.Random,
           late: bool = False) -> tuple[str, list[int]]:  # fmt: skip
    """(export text, 0-based numbers of its chrome lines)."""
    head, tail = _chrome(style, name, rng, late)
    lines: list[str] = []
    chrome: list[int] = []
    for part, is_chrome in (([f"# {title}", ""], False), (head, True),
                            (body.strip("\n").split("\n"), False), (tail, True)):  # fmt: skip
        for line in part:
            if is_chrome and line.strip():
                chrome.append(len(lines))
            lines.append(line)
    return "\n".join(lines) + "\n", chrome


def _write(path: Path, text: str, sidecar: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.with_suffix(".gold.json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "peps")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench" / "hygiene")
    args = parser.parse_args()
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    from ingest.importers.rst import extract_rst

    authors = sorted(p for p in args.corpus.iterdir() if p.is_dir())
    for index, folder in enumerate(authors):
        files = sorted(folder.glob("*.rst"))
        for number, path in enumerate(files):
            doc = extract_rst(path.read_text(encoding="utf-8"), str(path))
            name = (doc.extra.get("header_authors") or [folder.name.replace("-", " ").title()])[0]
            # The last author writes on two platforms; the others on one each.
            style = STYLES[index % len(STYLES)] if index < len(authors) - 1 or number % 2 else "linkedin"
            rng = random.Random(f"{folder.name}/{path.stem}")
            late = number >= 0.55 * len(files)
            text, chrome = render(doc.text, doc.title or path.stem, style, name, rng, late)
            gold = {"author": name, "platform": style, "chrome_lines": chrome}
            _write(args.out / "messy" / folder.name / f"{path.stem}.md", text, gold)
            clean = f"# {doc.title or path.stem}\n\n{doc.text.strip()}\n"
            _write(args.out / "clean" / folder.name / f"{path.stem}.md", clean,
                   {"author": name, "platform": "file", "chrome_lines": []})  # fmt: skip
        print(f"{folder.name}: {len(files)} documents", flush=True)


if __name__ == "__main__":
    main()
