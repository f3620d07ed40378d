"""reStructuredText (.rst) → Markdown text, title, date and PEP-style header fields.

- An RFC-822 style header block at the top (as in Python Enhancement Proposals: `PEP: 252`,
  `Title: …`, `Author: Name <mail>`, `Created: 19-Apr-2001`, continuation lines indented,
  ending at the first blank line) is read when the first line is `Key: value`, every line
  of the block is a field or a continuation, and it names at least one of Title, Author,
  Created or PEP (so a document that opens with a one-line "Note: …" paragraph keeps it).
  The header is cut from the text: `Title` is the title, `Created` the publication date,
  `Author` the author names (e-mail addresses dropped).
- The body is rendered with docutils' html5 writer, locked down (no file inclusion, no raw
  HTML, no config files, nothing printed, never halts), then partitioned like any HTML
  page (render.py), so sections become `#` headings by depth, literal and code blocks
  become fenced code, lists and links stay.
- Sphinx-only directives and roles, which docutils does not know and would drop together
  with their content, get harmless fallbacks: code-ish directives render as code, others
  keep their argument and content as text, navigation-only ones (`toctree`, `highlight`,
  `index`, …) render nothing; code-ish roles (`:func:`, `:class:`, …) render as literals,
  other roles (`:ref:`, `:doc:`, `:term:`, …) as their text.
- Markup that docutils cannot handle at all falls back to the plain-text path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.importers.dates import parse_date
from ingest.importers.render import (
    elements_to_markdown,
    first_heading,
    partition_html_text,
    partition_plain_text,
)

logger = logging.getLogger(__name__)

_HEADER_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(?:[ \t]+(.*?))?[ \t]*$")
_HEADER_MARKERS = {"title", "author", "created", "pep"}

# docutils' own writer settings: quiet, never halting, and unable to touch the file system
# or emit raw HTML (an .rst file is untrusted input).
_DOCUTILS_SETTINGS: dict[str, Any] = {
    "report_level": 5,
    "halt_level": 5,
    "exit_status_level": 5,
    "warning_stream": False,  # docutils: False means "no output" (None means stderr)
    "traceback": True,  # raise instead of printing a report and calling sys.exit()
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "_disable_config": True,  # no docutils.conf from the cwd, home or DOCUTILSCONFIG
    "embed_stylesheet": False,
    "stylesheet_path": [],
    "stylesheet": [],
    "image_loading": "link",
    "syntax_highlight": "none",  # plain <pre> text, no Pygments token spans
    # Sections keep the source's levels: top-level section = `#`, as a Markdown file would.
    "doctitle_xform": False,
    "initial_header_level": 1,
}

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})[-\s]([A-Za-z]+)[-\s,]*(\d{4})$")


@dataclass
class RstDocument:
    """What one .rst file yields: `extra` goes into the raw document's content as is."""

    text: str
    title: str
    published_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict)


def split_header(text: str) -> tuple[dict[str, str], str]:
    """(header fields, body) for a PEP-style RFC-822 header; ({}, text) when there is none.
    Continuation lines are joined to their field with a space; a repeated key's values are
    joined with ", "."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fields: list[list[str]] = []
    end = len(lines)
    for number, line in enumerate(lines):
        if not line.strip():
            end = number
            break
        match = _HEADER_FIELD.match(line)
        if match and not line[0].isspace():
            fields.append([match.group(1), match.group(2) or ""])
        elif line[0].isspace() and fields:
            fields[-1][1] = f"{fields[-1][1]} {line.strip()}".strip()
        else:
            return {}, text
    if not fields or not {key.casefold() for key, _ in fields} & _HEADER_MARKERS:
        return {}, text
    header: dict[str, str] = {}
    for key, value in fields:
        previous = header.get(key, "")
        header[key] = f"{previous}, {value}" if previous and value else previous or value
    return header, "\n".join(lines[end:])


def header_value(header: dict[str, str], key: str) -> str:
    """A header field by case-insensitive name (RFC 822 field names are), or ""."""
    for name, value in header.items():
        if name.casefold() == key.casefold():
            return value.strip()
    return ""


def author_names(value: str) -> list[str]:
    """`Guido van Rossum <guido@python.org>, Barry Warsaw <barry@python.org>` → the names.
    The older `guido@python.org (Guido van Rossum)` form gives the name in parentheses; a
    bare address gives nothing."""
    names: list[str] = []
    for part in value.split(","):
        part = part.strip()
        in_parens = re.search(r"\(([^()]*)\)", part)
        if in_parens and "@" in part.replace(in_parens.group(0), ""):
            part = in_parens.group(1)
        part = re.sub(r"<[^<>]*>", "", part)
        part = " ".join(part.split())
        if part and "@" not in part and part not in names:
            names.append(part)
    return names


def parse_header_date(value: str) -> datetime | None:
    """`19-Apr-2001` (PEP style, month names in English whatever the locale), `19 April 2001`
    or ISO `2001-04-19` → aware UTC datetime; anything else → None."""
    value = value.strip()
    match = _DAY_MONTH_YEAR.match(value)
    if match:
        month = _MONTHS.get(match.group(2).casefold())
        if month is None:
            return None
        try:
            return datetime(int(match.group(3)), month, int(match.group(1)), tzinfo=UTC)
        except ValueError:
            return None
    return parse_date(value)


# --- Sphinx fallbacks ---------------------------------------------------------------------

_SIMPLENAME = r"(?:(?!_)\w)+(?:[-._+:](?:(?!_)\w)+)*"  # docutils' directive/role name syntax
_DIRECTIVE_NAME = re.compile(rf"^[ \t]*\.\.[ \t]+(?:\|[^|\n]+\|[ \t]+)?({_SIMPLENAME})[ \t]?::", re.M)
_ROLE_NAME = re.compile(rf"(?:(?<![\w`]):({_SIMPLENAME}):`|`:({_SIMPLENAME}):(?!\w))")

# Directives whose content is code in Sphinx; the rest keep argument and content as text.
_CODE_DIRECTIVES = {"doctest", "testcode", "testsetup", "testcleanup", "testoutput",
                    "productionlist", "ipython", "prompt", "code-cell"}
# Navigation and rendering hints with no prose in them.
_SILENT_DIRECTIVES = {"highlight", "index", "toctree", "tabularcolumns", "currentmodule",
                      "codeauthor", "sectionauthor", "moduleauthor", "autosummary",
                      "literalinclude"}  # never read: a file reference, not prose
# Directives whose meaning is in their name, worded as Sphinx renders them.
_DIRECTIVE_LABELS = {"versionadded": "Added in version", "versionchanged": "Changed in version",
                     "deprecated": "Deprecated since version", "versionremoved": "Removed in version",
                     "seealso": "See also"}
# Roles naming code objects or literal strings, rendered as inline literals.
_CODE_ROLES = {"func", "meth", "class", "mod", "attr", "data", "exc", "obj", "const",
               "type", "member", "macro", "var", "struct", "union", "enum", "enumerator",
               "expr", "texpr", "file", "program", "command", "envvar", "option", "samp",
               "kbd", "makevar", "mailheader", "mimetype", "regexp", "token", "keyword",
               "opcode", "cmdoption"}

_registered: set[str] = set()  # names this module already looked at (and maybe registered)


class _AnyOptions(dict):  # type: ignore[type-arg]
    """An option_spec that accepts every option (Sphinx adds options docutils lacks, such
    as `:linenos:`; an unknown option would make docutils drop the whole block)."""

    def __missing__(self, key: str) -> Any:
        from docutils.parsers.rst import directives

        return directives.unchanged

    def __bool__(self) -> bool:  # docutils skips option parsing for an empty spec
        return True


def _code_block_class() -> type:
    from docutils.parsers.rst.directives.body import CodeBlock

    class SphinxCodeBlock(CodeBlock):
        """docutils' `code` with Sphinx's extra options accepted and ignored."""

        option_spec = _AnyOptions(CodeBlock.option_spec)

        def run(self) -> list[Any]:
            self.options = {k: v for k, v in self.options.items() if k in CodeBlock.option_spec}
            return super().run()

    return SphinxCodeBlock


def _generic_directive_class(name: str) -> type:
    from docutils import nodes
    from docutils.parsers.rst import Directive

    short = name.rsplit(":", 1)[-1].casefold()
    silent = short in _SILENT_DIRECTIVES
    label = _DIRECTIVE_LABELS.get(short, "")

    class FallbackDirective(Directive):
        """An unknown directive's argument and content, kept as ordinary text."""

        optional_arguments = 1
        final_argument_whitespace = True
        has_content = True
        option_spec = _AnyOptions()

        def run(self) -> list[Any]:
            if silent:
                return []
            container = nodes.container()
            argument = " ".join(filter(None, [label, *self.arguments]))
            if argument:
                inline, messages = self.state.inline_text(argument, self.lineno)
                container += nodes.paragraph("", "", *inline)
                container += messages
            if self.content:
                self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

    return FallbackDirective


def _fallback_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                   options: dict[str, Any] | None = None,
                   content: Sequence[str] = ()) -> tuple[list[Any], list[Any]]:
    from docutils import nodes
    from docutils.utils import unescape

    text = unescape(text)
    target = re.match(r"^(.+?)\s*<[^<>]+>$", text, re.S)
    shown = target.group(1) if target else text
    shown = shown.lstrip("!")
    if shown.startswith("~"):  # Sphinx's "show only the last component"
        shown = shown[1:].rsplit(".", 1)[-1]
    if name.rsplit(":", 1)[-1].casefold() in _CODE_ROLES:
        return [nodes.literal(rawtext, shown)], []
    return [nodes.inline(rawtext, shown)], []


def _pep_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
              options: dict[str, Any] | None = None,
              content: Sequence[str] = ()) -> tuple[list[Any], list[Any]]:
    """docutils' `:pep:` plus Sphinx's `:pep:`Title <8#anchor>`` form, which docutils
    rejects (it would leave the raw markup in the text)."""
    from docutils import nodes
    from docutils.parsers.rst.roles import pep_reference_role
    from docutils.utils import unescape

    titled = re.match(r"^(.+?)\s*<(\d{1,4})(#[\w-]+)?>$", unescape(text), re.S)
    if not titled:
        return pep_reference_role(name, rawtext, text, lineno, inliner, options, content)
    settings = inliner.document.settings
    uri = settings.pep_base_url + settings.pep_file_url_template % int(titled.group(2))
    return [nodes.reference(rawtext, titled.group(1), refuri=uri + (titled.group(3) or ""))], []


def _register_fallbacks(body: str) -> None:
    """Register fallbacks for the directive and role names in `body` that docutils does not
    know. Registration is global in docutils, so only unknown names are added (known ones
    keep docutils' behaviour), plus `code-block`/`sourcecode` with Sphinx's options."""
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser, directives, roles
    from docutils.parsers.rst.languages import en
    from docutils.utils import new_document

    if "code-block" not in _registered:
        # docutils knows these Sphinx names as aliases of `code`, but rejects (and drops)
        # blocks that use Sphinx's options.
        code_block = _code_block_class()
        for alias in ("code-block", "sourcecode"):
            directives.register_directive(alias, code_block)
            _registered.add(alias)
        roles.register_local_role("pep", _pep_role)
        _registered.add("pep")
    names = {m.group(1).casefold() for m in _DIRECTIVE_NAME.finditer(body)} - _registered
    role_names = {
        (m.group(1) or m.group(2)).casefold() for m in _ROLE_NAME.finditer(body)
    } - _registered
    if not names and not role_names:
        return
    settings = get_default_settings(Parser)
    settings.report_level, settings.halt_level, settings.warning_stream = 5, 5, False
    probe = new_document("<rst probe>", settings)
    for name in names:
        if directives.directive(name, en, probe)[0] is None:
            short = name.rsplit(":", 1)[-1]
            directive = (
                _code_block_class() if short in _CODE_DIRECTIVES else _generic_directive_class(name)
            )
            directives.register_directive(name, directive)
        _registered.add(name)
    for name in role_names:
        if roles.role(name, en, 0, probe.reporter)[0] is None:
            roles.register_local_role(name, _fallback_role)
        _registered.add(name)


def render_rst_html(body: str) -> str:
    """The body's HTML (sections, no page chrome) from docutils; raises on broken markup."""
    from docutils.core import publish_parts

    _register_fallbacks(body)
    # `writer=` takes the name: docutils 0.23 deprecates `writer_name=`.
    parts = publish_parts(source=body, writer="html5", settings_overrides=_DOCUTILS_SETTINGS)
    return str(parts["html_body"])


def extract_rst(raw: str, source_name: str = "<rst>") -> RstDocument:
    """Markdown text, title, date and header content of one decoded .rst file."""
    header, body = split_header(raw)
    extra: dict[str, Any] = {}
    if header:
        extra["header"] = header
        names = author_names(header_value(header, "Author"))
        if names:
            extra["header_authors"] = names
    title = header_value(header, "Title")
    published_at = parse_header_date(header_value(header, "Created")) if header else None

    try:
        elements = partition_html_text(render_rst_html(body)) if body.strip() else []
        text = elements_to_markdown(elements)
        title = title or first_heading(elements)
    except Exception as exc:  # noqa: BLE001 - docutils raises many kinds on odd markup
        logger.warning("%s: reStructuredText not rendered (%s); read as plain text", source_name, exc)
        text = elements_to_markdown(partition_plain_text(body), headings=False)
    return RstDocument(text=text, title=title, published_at=published_at, extra=extra)
