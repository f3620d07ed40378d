"""What the answer checks need from a model's vocabulary, computed once per model, and the
logits processors a generation asks for, built for llama.cpp or transformers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from core.llm.base import GenerationDefaults


class VocabMasks:
    """The logits processors a generation asks for, and what they need from a model's
    vocabulary, computed once per model: DRY's sequence breakers, the tokens of other
    scripts (core/llm/script_mask.py), each token's text (the answer checks)."""

    _vocab_pieces: list[tuple[int, str]]  # (token id, its text), a runtime's cached property
    defaults: GenerationDefaults

    def _eos_ids(self) -> list[int | None]:
        """The runtime's end-of-sequence token ids."""
        raise NotImplementedError

    def _encode_special(self, text: str) -> list[int]:
        """`text` as token ids, special tokens spelt as themselves."""
        raise NotImplementedError

    @cached_property
    def _breakers(self) -> frozenset[int]:
        """Token ids holding a line break (DRY's sequence breakers)."""
        from core.llm.dry import breaker_tokens

        return breaker_tokens(self._vocab_pieces)

    @cached_property
    def _spellings(self) -> dict[int, int]:
        """Each word token ↔ the same word with/without its leading space (DRY's reach)."""
        from core.llm.dry import spacing_variants

        return spacing_variants(self._vocab_pieces)

    @cached_property
    def _piece_texts(self) -> list[str]:
        """Each token id's text, indexed by id (grounded names and the recitation guard
        read it)."""
        texts = [""] * (max((token for token, _ in self._vocab_pieces), default=-1) + 1)
        for token, text in self._vocab_pieces:
            texts[token] = text
        return texts

    @cached_property
    def _end_tokens(self) -> Any:
        """Token ids that end an answer (core/llm/min_words.py)."""
        from core.llm.min_words import end_tokens

        return end_tokens(self._eos_ids(), self.defaults.stop, self._encode_special)

    def _foreign_tokens(self, script: str) -> Any:
        """Token ids spelling letters of a script other than `script` (empty for `any`)."""
        from core.llm.script_mask import foreign_tokens

        cache = self.__dict__.setdefault("_foreign_by_script", {})
        if script not in cache:
            cache[script] = foreign_tokens(self._vocab_pieces if script != "any" else (), script)
        return cache[script]

    def _logits_processors(
        self, kwargs: dict[str, Any], llamacpp: bool, stops: Sequence[str] = ()
    ) -> list[Any]:
        """The checks a generation asked for, as llama-cpp-python's or transformers' logits
        processors: DRY, the script mask, grounded names, the recitation guard and the
        minimum length (which also keeps a short answer from writing one of `stops`)."""
        from core.llm import dry, grounded_names, min_words, recitation, script_mask

        processors: list[Any] = []
        if kwargs.get("dry_multiplier"):
            penalty = dry.Dry(multiplier=float(kwargs["dry_multiplier"]))
            spellings = self._spellings if kwargs.get("dry_spellings") else None
            kind = dry.LlamaCppDry if llamacpp else dry.TransformersDry
            processors.append(kind(penalty, self._breakers, spellings))
        banned = self._foreign_tokens(kwargs.get("script") or "any")
        if banned.size:
            mask = (
                script_mask.LlamaCppScriptMask if llamacpp else script_mask.TransformersScriptMask
            )
            processors.append(mask(banned))
        if kwargs.get("grounded_names"):
            names = (
                grounded_names.LlamaCppGroundedNames
                if llamacpp
                else grounded_names.TransformersGroundedNames
            )
            sources = kwargs.get("grounding_sources")
            prose = bool(kwargs.get("prose_names", True))
            processors.append(names(self._piece_texts, sources, prose_names=prose))
        index, max_copied = kwargs.get("recitation_index"), kwargs.get("max_copied_words")
        if index is not None and max_copied:
            guard = (
                recitation.LlamaCppRecitationGuard
                if llamacpp
                else recitation.TransformersRecitationGuard
            )
            processors.append(guard(self._piece_texts, index, int(max_copied)))
        if kwargs.get("min_words"):
            at_least = (
                min_words.LlamaCppMinimumWords if llamacpp else min_words.TransformersMinimumWords
            )
            words = int(kwargs["min_words"])
            processors.append(at_least(self._piece_texts, self._end_tokens, words, stops))
        return processors
