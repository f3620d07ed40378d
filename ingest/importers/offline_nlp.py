"""Keep `unstructured` offline: a local spaCy pipeline instead of its run-time model download.

Where the download happens (unstructured 0.27.32): every partitioner that classifies text
(`partition_text`, `partition_html` -> `html/parser.derive_element_type_from_text`,
`partition_md` via HTML, `partition_docx`) calls `partition/text_type.py`
(`is_possible_narrative_text`, `is_possible_title`), which calls `sent_tokenize`,
`word_tokenize` and `pos_tag` in `unstructured/nlp/tokenize.py`. Those run
`_get_nlp()` -> `_load_spacy_model()`, which calls `spacy.load("en_core_web_sm")` and, when
the package is missing, `_install_spacy_model()` downloads the wheel from GitHub. There is
no setting to turn that off, so offline it raises on the first partition.

The fix, applied in this one place: `use_offline_nlp()` replaces `tokenize._get_nlp` (the
single function every tokenizer call goes through) with a loader that returns the real
`en_core_web_sm` only when it is already installed (no download), and otherwise a blank
spaCy English pipeline with the rule-based `sentencizer` plus a tiny rule-based verb tagger.
unstructured reads the POS tags for one thing only, "does this text contain a verb"
(`contains_verb`), so the tagger marks likely verbs (auxiliaries, common verbs, -ed/-ing
forms) with `VB`; without it every short paragraph would lose its "narrative" type.
`_install_spacy_model` is also replaced with one that raises, so no code path can reach
the network. Everything here is local: no weights, no download.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

# The unstructured release this adapter was written against (pyproject.toml pins it);
# tests/test_local_files.py fails when an upgrade moves what it replaces.
PINNED_UNSTRUCTURED = "0.27.32"
_lock = threading.Lock()
_applied = False

OFFLINE_PIPELINE_NAME = "twin_offline_en"

# Closed-class and very common verbs; enough for unstructured's "contains a verb" check.
_COMMON_VERBS = frozenset(
    """
    am is are was were be been being have has had having do does did done doing
    can could will would shall should may might must need needs dare ought
    get gets got gotten getting go goes went gone going make makes made making
    take takes took taken taking see sees saw seen know knows knew known think thinks thought
    come comes came say says said use uses give gives gave given find finds found tell tells
    told want wants work works call calls try tries tried ask asks feel feels felt become
    becomes became leave leaves left put puts mean means meant keep keeps kept let lets begin
    begins began seem seems help helps show shows shown hear hears heard run runs ran move
    moves live lives believe believes bring brings brought happen happens write writes wrote
    written read reads sit sits sat stand stands stood lose loses lost pay pays paid meet
    meets met include includes continue continues set sets learn learns change changes lead
    leads led understand understands understood watch watches follow follows stop stops
    create creates speak speaks spoke spoken allow allows add adds spend spends spent grow
    grows grew grown open opens walk walks win wins won offer offers remember remembers love
    loves consider considers appear appears buy buys bought wait waits serve serves die dies
    send sends sent expect expects build builds built stay stays fall falls fell cut cuts
    reach reaches kill kills remain remains suggest suggests raise raises pass passes sell
    sells sold require requires report reports decide decides pull pulls explain explains
    hope hopes ship ships shipped runs returns return store stores fix fixes fixed
    """.split()
)
_VERB_SUFFIX = re.compile(r"^[a-z]{3,}(?:ed|ing)$")


def _tag_verbs(doc: Any) -> Any:
    for token in doc:
        lower = token.lower_
        if lower in _COMMON_VERBS or (_VERB_SUFFIX.match(lower) and not token.is_title):
            token.tag_ = "VB"
    return doc


@lru_cache(maxsize=1)
def build_offline_pipeline() -> Any:
    """A blank English spaCy pipeline: tokenizer, `sentencizer`, rule-based verb tagger."""
    import spacy
    from spacy.language import Language

    if not Language.has_factory("twin_verb_tagger"):
        Language.component("twin_verb_tagger")(_tag_verbs)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("twin_verb_tagger")
    nlp.meta["name"] = OFFLINE_PIPELINE_NAME
    return nlp


def _load_local_nlp() -> Any:
    import spacy
    from spacy.util import is_package
    from unstructured.nlp import tokenize

    name = tokenize._SPACY_MODEL_NAME
    if is_package(name):  # installed by hand: use it, it is better and needs no network
        return spacy.load(name, exclude=tokenize._SPACY_EXCLUDE)
    return build_offline_pipeline()


def _refuse_download() -> None:
    raise RuntimeError(
        "unstructured tried to download spaCy's en_core_web_sm; this project runs it "
        "offline (ingest.importers.offline_nlp)"
    )


def use_offline_nlp() -> None:
    """Point unstructured's tokenizers at a local pipeline. Idempotent and thread-safe."""
    global _applied
    if _applied:
        return
    with _lock:
        if _applied:
            return
        from unstructured.nlp import tokenize

        tokenize._get_nlp = lru_cache(maxsize=1)(_load_local_nlp)
        tokenize._install_spacy_model = _refuse_download
        _applied = True
