"""Shared by the benchmarks that read real writing (`../shared/corpora/…`): a folder of
per-author subfolders, ingested through the production pipeline (`python -m ingest add`)
into the benchmark's own DATA_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _serving import OFFLINE_ENV as SERVING_ENV
from _serving import ROOT

# The serving benchmarks' offline switches, plus unstructured's notice (ingest runs here).
OFFLINE_ENV = {**SERVING_ENV, "UNSTRUCTURED_DISABLE_NOTICE": "1"}
SUFFIXES = {".rst", ".md", ".markdown", ".txt", ".html", ".htm"}


def load_corpus(folder: Path) -> dict[str, list[Path]]:
    """Author folder name → its documents, sorted."""
    corpus = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in sub.rglob("*") if f.suffix.lower() in SUFFIXES)
        if files:
            corpus[sub.name] = files
    if len(corpus) < 2:
        raise SystemExit(f"{folder}: need at least two author subfolders with documents")
    return corpus


def author_name(folder: str, files: list[Path]) -> str:
    """The author's name from the documents' own header (`Author:`), else the folder's."""
    from core.domain import User
    from ingest.importers.local_files import load_file

    doc = load_file(files[0], User.from_full_name(folder))
    names = (getattr(doc, "content", None) or {}).get("header_authors") or []
    return str(names[0]) if names else folder.replace("-", " ").title()


def ingest(work: Path, documents: dict[str, list[Path]], names: dict[str, str],
           env: dict[str, str] | None = None) -> None:  # fmt: skip
    """Ingest each author's documents through `python -m ingest add` into
    `work/data` (skipped when `work/ingested.json` says the same set is already there)."""
    marker = work / "ingested.json"
    wanted = {a: [str(f) for f in files] for a, files in documents.items()}
    if env:
        wanted["env"] = env  # type: ignore[assignment]
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    run_env = {**os.environ, **OFFLINE_ENV, **(env or {}), "DATA_DIR": str(work / "data")}
    for author, files in documents.items():
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "ingest", "add", *map(str, files), "--author", names[author]]
        subprocess.run(cmd, env=run_env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        print(f"ingested {len(files)} documents of {names[author]} in "
              f"{time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
    marker.write_text(json.dumps(wanted))
