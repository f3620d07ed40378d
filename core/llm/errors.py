"""The generation error every backend raises."""


class LLMError(RuntimeError):
    """Generation failed for a reason the caller can act on (bad server, missing model)."""
