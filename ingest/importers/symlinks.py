"""Symbolic links met while walking a folder the user named: which ones may be followed.

A folder given on the command line is the boundary of what the user chose to import. A
link inside it that resolves outside it (`passwd-link.txt -> /etc/passwd`, a link to
another folder) is refused: following it would store files the user never named. The
rule, used by every walker under ingest/importers:
- a link that resolves inside the folder may be followed (callers skip linked folders,
  whose files the walk reaches in their own place);
- a link that resolves outside is one CollectFailure naming the link and its target;
- a dangling link is one CollectFailure naming the missing target;
- a link loop (`a -> b -> a`) is skipped without a failure: it names no file.
A file given directly on the command line is never judged here: the user named it.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from ingest.errors import CollectFailure

logger = logging.getLogger(__name__)


def real_root(root: Path) -> Path:
    """The folder's real location: links are judged against it, so a folder that is itself
    reached through a link (`~/notes -> /data/notes`) still accepts links inside it."""
    return Path(os.path.realpath(root))


def is_inside(path: Path, root_real: Path) -> bool:
    """Whether `path`, once every link on the way is resolved, lies in `root_real`."""
    return Path(os.path.realpath(path)).is_relative_to(root_real)


def judge_link(link: Path, root_real: Path) -> Path | CollectFailure | None:
    """The link's real target when it may be followed, a CollectFailure when it is refused,
    None for a loop (see the module docstring)."""
    try:
        os.stat(link)  # follows the whole chain: tells a loop from a dangling link
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            logger.info("%s: symlink loop, skipped", link)
            return None
        try:
            points_to = os.readlink(link)
        except OSError:
            points_to = "?"
        return CollectFailure(str(link), f"broken symlink (points to {points_to})")
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(root_real):
        return CollectFailure(
            str(link), f"refused: symlink points outside {root_real}, to {target}"
        )
    return target
