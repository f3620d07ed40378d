"""The voice evaluation's one error type, shared by its loaders, resolver and runner."""


class VoiceEvalError(RuntimeError):
    """Missing inputs (no held-out passages, no candidate model): a message for the user."""
