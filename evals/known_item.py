"""Known-item requests: the author half-remembers something they wrote and asks for it.

Built from a folder of per-author subfolders of real writing (`../shared/corpora/peps`),
deterministically, as the topical set's companion (`evals/data/peps_known_items.jsonl`):

- **phrase**: a sentence found in exactly one document, reduced to every other content word
  ("module introduced Python see pep io introduced") — how a person recalls a line;
- **identifier**: a code name that occurs in exactly one document (`PyMem_SetupDebugHooks`,
  `os.fspath`, `__fspath__`), asked about in a short request;
- **name**: a person's name that occurs in exactly one document, not an author of the corpus.

The gold is the one document that holds the sentence, identifier or name. A request never
copies a whole sentence, so a retriever that only matches long verbatim strings cannot pass.

    .venv/bin/python -m evals.known_item ../shared/corpora/peps > evals/data/peps_known_items.jsonl
    .venv/bin/python -m evals.known_item ../shared/corpora/peps --salt heldout \
        --exclude evals/data/peps_known_items.jsonl > evals/data/peps_known_items_heldout.jsonl

The second set was drawn after the retrieval default was tuned on the first: the default's
figures on it are the held-out check.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.retrieval_corpus import SUFFIXES

# Function words a person leaves out when recalling a line (and rst/PEP noise words).
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not now of off on once only or other our
    ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours may might must shall
    one two also e g eg ie i.e etc use used using see""".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'\-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
# Code names: dotted paths, snake_case with an underscore, dunders, CamelCase with inner caps.
_IDENTIFIER = re.compile(
    r"(?<![\w.])(?:__[a-z][a-z0-9_]*__|[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][\w.]*[A-Za-z0-9_]"
    r"|[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+)(?![\w])"
)
# Host names and file names look like dotted code names; nobody recalls a post by them.
_WEB_NAME = re.compile(r"\.(?:org|com|net|io|html?|txt|rst|py|gz|zip)\b|^www\.")
_NAME = re.compile(r"\b([A-Z][a-z]{2,})\s+([A-Z][a-z]{2,}(?:-[A-Z][a-z]+)?)\b")
_NOT_NAMES = frozenset(
    """Python Guido Standard Track Process Informational Final Accepted Rejected Draft Open
    Issues Copyright Reference Implementation Backwards Compatibility Security Rationale
    Motivation Abstract Specification Windows Linux Unix Mac The This That These Those
    Data Model Object Type Note See Also Deferred Withdrawn Superseded Status Active""".split()
)
_LINK_TEXT = re.compile(r"https?:|www\.|@|mail\.python")
_RST_ROLE = re.compile(r":[a-z]+:`([^`<]*)(?:<[^`]*>)?`")
_RST_NOISE = re.compile(r"\[#?\w*\]_|`_|``|\*\*|\|")


@dataclass(frozen=True)
class SourceDocument:
    key: str
    author: str
    text: str


@dataclass(frozen=True)
class KnownItem:
    id: str
    request: str
    gold: str
    kind: str  # phrase | identifier | name

    def as_row(self) -> dict[str, object]:
        return {"id": self.id, "request": self.request, "gold_documents": [self.gold],
                "style": f"known-item/{self.kind}"}  # fmt: skip


def load_folder(folder: Path) -> list[SourceDocument]:
    """Every document of a folder of per-author subfolders (the key is the file's stem)."""
    docs = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES and path.parent != Path(folder):
            docs.append(SourceDocument(path.stem, path.parent.name, path.read_text("utf-8", "replace")))
    if not docs:
        raise ValueError(f"{folder}: no documents in per-author subfolders")
    return docs


def prose_paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a PEP-like document: no header fields, headings, literal
    blocks, lists of references or tables; rst roles reduced to their text."""
    out: list[str] = []
    in_literal = False
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if not lines:
            continue
        indented = all(line.startswith((" ", "\t")) for line in lines if line.strip())
        if in_literal and indented:
            continue
        in_literal = block.rstrip().endswith("::")
        first = lines[0].strip()
        if indented or re.match(r"^[A-Z][\w-]*:\s", first) or first.startswith((".. ", "* ", "- ", "+", "=", "#")):
            continue
        if len(lines) >= 2 and re.fullmatch(r"[=\-~^*#+]{3,}", lines[-1].strip()):
            continue
        paragraph = " ".join(line.strip() for line in lines)
        paragraph = _RST_NOISE.sub("", _RST_ROLE.sub(r"\1", paragraph))
        out.append(re.sub(r"\s+", " ", paragraph.rstrip(":")).strip())
    return [p for p in out if p]


def content_words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence) if w.lower().strip("'-") not in STOPWORDS and len(w) > 2]


def _pick(items: Sequence[str], key: str, n: int, salt: str = "") -> list[str]:
    """`n` items chosen by a stable hash (the same set on every machine and run; another
    `--salt` draws another set, e.g. a held-out one for a recipe tuned on the first)."""
    ranked = sorted(items, key=lambda item: hashlib.sha256(f"{salt}{key}:{item}".encode()).hexdigest())
    return ranked[:n]


def _document_counts(tokens_by_doc: dict[str, set[str]]) -> Counter[str]:
    return Counter(token for tokens in tokens_by_doc.values() for token in tokens)


def phrase_items(docs: Sequence[SourceDocument], per_document: int, salt: str = "") -> list[KnownItem]:
    sentences = {
        d.key: [s for p in prose_paragraphs(d.text) for s in _SENTENCE_END.split(p)] for d in docs
    }
    normal = {k: {" ".join(content_words(s)).lower() for s in v} for k, v in sentences.items()}
    seen_in = _document_counts(normal)
    items = []
    for doc in docs:
        usable = [s for s in dict.fromkeys(sentences[doc.key])
                  if 8 <= len(content_words(s)) <= 30 and not _LINK_TEXT.search(s)
                  and seen_in[" ".join(content_words(s)).lower()] == 1]  # fmt: skip
        for number, sentence in enumerate(_pick(usable, doc.key, per_document, salt), 1):
            words = content_words(sentence)[::2]
            items.append(KnownItem(f"{doc.key}-phrase-{number}", " ".join(words).lower(), doc.key, "phrase"))
    return items


IDENTIFIER_REQUESTS = ("{x}", "what did I write about {x}", "where do I explain {x}?", "{x} rationale")
NAME_REQUESTS = ("the post where I mention {x}", "{x}", "what did {x} point out")


def identifier_items(docs: Sequence[SourceDocument], per_document: int, salt: str = "") -> list[KnownItem]:
    found = {d.key: set(_IDENTIFIER.findall(d.text)) for d in docs}
    seen_in = _document_counts(found)
    items = []
    for doc in docs:
        usable = sorted(x for x in found[doc.key]
                        if seen_in[x] == 1 and len(x) >= 6 and not _WEB_NAME.search(x))  # fmt: skip
        for number, ident in enumerate(_pick(usable, doc.key, per_document, salt), 1):
            template = _pick(IDENTIFIER_REQUESTS, ident, 1, salt)[0]
            items.append(KnownItem(f"{doc.key}-identifier-{number}", template.format(x=ident), doc.key, "identifier"))
    return items


def name_items(docs: Sequence[SourceDocument], per_document: int, salt: str = "") -> list[KnownItem]:
    authors = {d.author.replace("-", " ").lower() for d in docs}
    # A capitalised word that the corpus also writes in lower case is a common word that
    # starts a sentence or heading ("Current Behaviour"), not a first name.
    lower_words = {w for d in docs for w in _WORD.findall(d.text) if w.islower()}
    found = {d.key: {" ".join(m) for m in _NAME.findall(d.text)
                     if not (set(m) & _NOT_NAMES) and m[0].lower() not in lower_words}
             for d in docs}  # fmt: skip
    seen_in = _document_counts(found)
    items = []
    for doc in docs:
        usable = sorted(n for n in found[doc.key] if seen_in[n] == 1 and n.lower() not in authors)
        for number, name in enumerate(_pick(usable, doc.key, per_document, salt), 1):
            template = _pick(NAME_REQUESTS, name, 1, salt)[0]
            items.append(KnownItem(f"{doc.key}-name-{number}", template.format(x=name), doc.key, "name"))
    return items


def build_known_items(docs: Sequence[SourceDocument], phrases: int = 1, identifiers: int = 1,
                      names: int = 1, salt: str = "") -> list[KnownItem]:  # fmt: skip
    """Known-item requests for every document: up to `phrases` recalled sentences,
    `identifiers` code names and `names` people's names each, all unique to it. Another
    `salt` draws another sample (a held-out set for a recipe tuned on the first)."""
    items = [*phrase_items(docs, phrases, salt), *identifier_items(docs, identifiers, salt),
             *name_items(docs, names, salt)]  # fmt: skip
    return sorted(items, key=lambda item: item.id)


def write_jsonl(items: Iterable[KnownItem]) -> str:
    return "".join(json.dumps(item.as_row()) + "\n" for item in items)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write a known-item eval set (JSON lines) for a corpus folder.")
    parser.add_argument("folder", type=Path, help="folder of per-author subfolders")
    parser.add_argument("--phrases", type=int, default=1)
    parser.add_argument("--identifiers", type=int, default=1)
    parser.add_argument("--names", type=int, default=1)
    parser.add_argument("--salt", default="", help="draw another sample (a held-out set)")
    parser.add_argument("--exclude", type=Path, help="leave out the requests of this set")
    args = parser.parse_args(argv)
    items = build_known_items(load_folder(args.folder), args.phrases, args.identifiers, args.names,
                              args.salt)  # fmt: skip
    if args.exclude:
        taken = {json.loads(line)["request"] for line in args.exclude.read_text("utf-8").splitlines() if line}
        items = [item for item in items if item.request not in taken]
    sys.stdout.write(write_jsonl(items))
    kinds = Counter(item.kind for item in items)
    print(f"{len(items)} requests: {dict(kinds)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
