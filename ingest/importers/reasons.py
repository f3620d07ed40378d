"""An exception → the reason line a user reads next to the item's name.

Parsing libraries put the object they were handed into their messages (python-docx:
`not a ZIP archive (so not a DOCX file): <_io.BytesIO object at 0x7f…>`). The item is
already named by the failure line, so such object reprs are dropped: they say nothing to
the user and differ on every run.
"""

from __future__ import annotations

import re

_OBJECT_REPR = re.compile(r":?\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def reason_of(exc: BaseException) -> str:
    """The exception's message without object reprs; its type name when nothing is left."""
    # str(KeyError("x")) is "'x'": the quotes are repr's, not the message's.
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = _OBJECT_REPR.sub("", message).strip().rstrip(":").strip()
    return text or type(exc).__name__
