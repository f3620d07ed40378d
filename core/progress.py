"""Progress of long jobs: a bar on a terminal, plain lines when the output is not one.

    bar = progress_bar(total=len(todo), desc="Embedding", unit="doc")
    bar.update(1)
    bar.close()

Off a terminal (CI logs, pipes, a supervisor) a bar's carriage returns pile up into one
unreadable line; there the same calls print `Embedding: 12/56 doc (21%)` lines instead —
at every 10% of the total (or every 50 items when the total is unknown) and at the end.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class LineProgress:
    """tqdm's `update`/`set_postfix`/`close` as one line per step of progress."""

    def __init__(self, total: int | None, desc: str, unit: str, file: TextIO) -> None:
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.n = 0
        self._reported = -1
        self._postfix = ""

    def _step(self) -> int:
        if self.total:
            return self.n * 10 // self.total
        return self.n // 50

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._step() != self._reported:
            self._reported = self._step()
            self._print()

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def _print(self) -> None:
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n // self.total}%)" if self.total else ""
        extra = f" [{self._postfix}]" if self._postfix else ""
        print(f"{self.desc}: {done} {self.unit}{share}{extra}", file=self.file, flush=True)

    def close(self) -> None:
        if self.n and (not self.total or self.n != self.total or self._reported != 10):
            self._print()


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it",
                 file: TextIO | None = None) -> Any:  # fmt: skip
    """A tqdm bar when `file` (default stderr) is a terminal, else a `LineProgress`; both
    have `update`, `set_postfix` and `close`."""
    stream = file or sys.stderr
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=stream)
    return LineProgress(total, desc, unit, stream)
