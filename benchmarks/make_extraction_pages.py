"""Build the extraction benchmark's layout fixtures: real prose in varied page layouts.

Each page takes sections of a public-domain PEP (`../shared/corpora/peps`, parsed with
docutils) as its article body and wraps it in the chrome of one kind of site (WordPress,
Ghost, Hugo, Jekyll, Blogger, dev.to, a docs theme, a newsletter, Medium, Substack, LinkedIn
Pulse): cookie banners, navigation, sidebars, share bars, related posts and comments whose
text comes from *other* PEPs, so that boilerplate reads like prose too. The gold Markdown is
written from the same parsed blocks, never from an extractor's output.

    .venv/bin/python benchmarks/make_extraction_pages.py [--corpus ../shared/corpora/peps]

writes `tests/fixtures/extraction/layouts/<name>.html` and `<name>.gold.md` (committed; the
tests and the benchmark read them without the corpus).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import textwrap
from pathlib import Path

from _extraction_themes import LANGS_DECLARED, page  # noqa: E402 - benchmarks/ is on sys.path
from docutils import nodes
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "extraction" / "layouts"
Inline = list[tuple[str, str, str]]  # (kind, text, url): text | code | em | strong | link
Block = tuple  # ("h", level, Inline) | ("p", Inline) | ("code", text, lang) | ("ul"/"ol", items)
# | ("quote", [Inline]) | ("table", [header cells], [[cells]]); list item: (Inline, [Block])

# name → (theme, PEP, its sections, PEP whose prose fills comments/related/sidebar)
PAGES: dict[str, tuple[str, str, list[str], str]] = {
    "wordpress-ns-clocks": ("wordpress", "victor-stinner/pep-0564",
                            ["Abstract", "Changes", "Annex: Clocks Resolution in Python"],
                            "victor-stinner/pep-0540"),
    "ghost-config-api": ("ghost", "victor-stinner/pep-0741",
                         ["Abstract", "Rationale", "Examples"], "victor-stinner/pep-0446"),
    "hugo-asyncio-notes": ("hugo", "guido-van-rossum/pep-3156",
                           ["Introduction", "Specifying Times", "Futures"],
                           "guido-van-rossum/pep-0340"),
    "jekyll-existence-checks": ("jekyll", "alyssa-coghlan/pep-0531",
                                ["Abstract", "Rationale", "Risks and concerns"],
                                "alyssa-coghlan/pep-0403"),
    "blogger-bool-type": ("blogger", "guido-van-rossum/pep-0285",
                          ["Abstract", "Rationale", "Specification", "Compatibility"],
                          "guido-van-rossum/pep-0280"),
    "devto-breakpoint": ("devto", "barry-warsaw/pep-0553",
                         ["Abstract", "Rationale", "Proposal", "Rejected alternatives"],
                         "barry-warsaw/pep-0396"),
    "docs-lock-files": ("docs", "brett-cannon/pep-0751",
                        ["Motivation", "Rationale", "Installation"], "brett-cannon/pep-3122"),
    "newsletter-compat-version": ("newsletter", "victor-stinner/pep-0606",
                                  ["Abstract", "Rationale"], "victor-stinner/pep-0524"),
    "medium-hide-c-api": ("medium", "victor-stinner/pep-0620",
                          ["Abstract", "Rationale", "Specification"], "victor-stinner/pep-0510"),
    "substack-deprecation-warning": ("substack", "alyssa-coghlan/pep-0565",
                                     ["Abstract", "Specification"], "alyssa-coghlan/pep-0538"),
    "linkedin-venv-discovery": ("linkedin", "brett-cannon/pep-0832",
                                ["Abstract", "Motivation", "Specification", "Rationale"],
                                "brett-cannon/pep-0488"),
    # No landmarks and utility classes only; comments inside <article>; TOC and author box.
    "tailwind-pyc-files": ("tailwind", "barry-warsaw/pep-3147",
                           ["Abstract", "Background", "Rationale", "Proposal"],
                           "barry-warsaw/pep-3149"),
    "wpcomments-main-module": ("wpcomments", "alyssa-coghlan/pep-0338",
                               ["Abstract", "Rationale", "Proposed Semantics"],
                               "alyssa-coghlan/pep-0366"),
    "eleventy-malloc-hooks": ("eleventy", "victor-stinner/pep-0445",
                              ["Abstract", "Rationale", "Examples"],
                              "victor-stinner/pep-0509"),
}  # fmt: skip
URLS = {
    "medium": "https://medium.com/@pep.author/{name}-9a8b7c6d5e4f",
    "substack": "https://pepnotes.substack.com/p/{name}",
    "linkedin": "https://www.linkedin.com/pulse/{name}-pep-author",
}
DEFAULT_URL = "https://blog.example.org/2024/{name}/"


# ------------------------------------------------------------------------- PEP → blocks


def read_pep(path: Path) -> tuple[dict[str, str], nodes.document]:
    header, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    settings = {"report_level": 5, "halt_level": 5, "pep_references": True}
    return {k.strip(): v.strip() for k, v in fields.items()}, publish_doctree(
        body, settings_overrides=settings
    )


def inline(node: nodes.Node) -> Inline:
    out: Inline = []
    for child in node.children:
        if isinstance(child, nodes.Text):
            out.append(("text", re.sub(r"\s+", " ", str(child)), ""))
        elif isinstance(child, (nodes.footnote_reference, nodes.citation_reference, nodes.target)):
            continue
        elif isinstance(child, nodes.literal):
            out.append(("code", child.astext(), ""))
        elif isinstance(child, nodes.reference) and child.get("refuri", "").startswith("http"):
            out.append(("link", " ".join(child.astext().split()), child["refuri"]))
        elif isinstance(child, nodes.emphasis):
            out.append(("em", " ".join(child.astext().split()), ""))
        elif isinstance(child, nodes.strong):
            out.append(("strong", " ".join(child.astext().split()), ""))
        else:
            out.append(("text", " ".join(child.astext().split()), ""))
    return [(k, t, u) for k, t, u in out if t]


def code_language(block: nodes.literal_block) -> str:
    classes = [c for c in block.get("classes", []) if c != "code"]
    if classes:
        return classes[0]
    text = textwrap.dedent(block.astext())
    if text.lstrip().startswith(">>>"):
        return "pycon"
    try:
        ast.parse(text)
    except SyntaxError:
        return ""
    statements = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return "python" if statements and any(ch in text for ch in "(=:") else ""


def blocks_of(node: nodes.Node, level: int) -> list[Block]:
    found: list[Block] = []
    for child in node.children:
        if isinstance(child, nodes.section):
            found.append(("h", level, inline(child[0])))
            found.extend(blocks_of(child, level + 1))
        elif isinstance(child, nodes.paragraph):
            if child.astext().strip():
                found.append(("p", inline(child)))
        elif isinstance(child, nodes.literal_block):
            found.append(("code", child.astext().rstrip(), code_language(child)))
        elif isinstance(child, (nodes.bullet_list, nodes.enumerated_list)):
            found.append(list_block(child))
        elif isinstance(child, nodes.block_quote):
            paras = [inline(p) for p in child.findall(nodes.paragraph)]
            if paras and not list(child.findall(nodes.literal_block)):
                found.append(("quote", paras))
        elif isinstance(child, nodes.table):
            rows = [[" ".join(e.astext().split()) for e in row.findall(nodes.entry)]
                    for row in child.findall(nodes.row)]  # fmt: skip
            if len(rows) > 1 and len({len(r) for r in rows}) == 1:
                found.append(("table", rows[0], rows[1:]))
    return found


def list_block(node: nodes.Element) -> Block:
    items = []
    for item in node.children:
        paras = [c for c in item.children if isinstance(c, nodes.paragraph)]
        subs = [list_block(c) for c in item.children
                if isinstance(c, (nodes.bullet_list, nodes.enumerated_list))]  # fmt: skip
        if paras:
            text: Inline = []
            for i, para in enumerate(paras):
                text.extend(([("text", " ", "")] if i else []) + inline(para))
            items.append((text, subs))
    kind = "ol" if isinstance(node, nodes.enumerated_list) else "ul"
    return (kind, items)


def article(doc: nodes.document, sections: list[str]) -> list[Block]:
    chosen: list[Block] = []
    for section in doc.findall(nodes.section):
        if isinstance(section.parent, nodes.document) and section[0].astext() in sections:
            chosen.append(("h", 2, inline(section[0])))
            chosen.extend(blocks_of(section, 3))
    return chosen


def filler(doc: nodes.document, count: int) -> list[str]:
    """Plain paragraphs of another PEP: realistic text for comments and teasers."""
    paras = [" ".join(p.astext().split()) for p in doc.findall(nodes.paragraph)]
    return [p for p in paras if 80 < len(p) < 500][:count]


# ------------------------------------------------------------------------- blocks → gold


def md_inline(parts: Inline) -> str:
    out = []
    for kind, text, url in parts:
        out.append({"code": f"`{text}`", "em": f"*{text}*", "strong": f"**{text}**",
                    "link": f"[{text}]({url})"}.get(kind, text))  # fmt: skip
    return re.sub(r"\s+", " ", "".join(out)).strip()


def md_list(block: Block, depth: int = 0) -> list[str]:
    kind, items = block
    lines = []
    for number, (text, subs) in enumerate(items, 1):
        marker = f"{number}." if kind == "ol" else "-"
        lines.append("  " * depth + f"{marker} {md_inline(text)}")
        for sub in subs:
            lines.extend(md_list(sub, depth + 1))
    return lines


def gold(blocks: list[Block], code_langs: bool) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + md_inline(block[2]))
        elif kind == "p":
            out.append(md_inline(block[1]))
        elif kind == "code":
            lang = block[2] if code_langs else ""
            out.append(f"```{lang}\n{textwrap.dedent(block[1])}\n```")
        elif kind in ("ul", "ol"):
            out.append("\n".join(md_list(block)))
        elif kind == "quote":
            out.append("\n>\n".join("> " + md_inline(p) for p in block[1]))
        elif kind == "table":
            rows = [block[1], ["---"] * len(block[1]), *block[2]]
            out.append("\n".join("| " + " | ".join(r) + " |" for r in rows))
    return "\n\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "peps")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (theme, pep, sections, other) in PAGES.items():
        meta, doc = read_pep(args.corpus / f"{pep}.rst")
        _, other_doc = read_pep(args.corpus / f"{other}.rst")
        blocks = article(doc, sections)
        url = URLS.get(theme, DEFAULT_URL).format(name=name)
        (OUT / f"{name}.html").write_text(
            page(
                theme, meta["Title"], "2024-05-02T09:00:00+00:00", blocks, filler(other_doc, 6), url
            ),
            encoding="utf-8",
        )
        (OUT / f"{name}.gold.md").write_text(
            gold(blocks, theme in LANGS_DECLARED), encoding="utf-8"
        )
        index[name] = {
            "url": url,
            "theme": theme,
            "prose": f"PEP {meta['PEP']}",
            "title": meta["Title"],
        }
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(index)} pages to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
