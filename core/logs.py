"""Logging setup shared by the command-line entry points."""

from __future__ import annotations

import logging
import sys

# Messages that are expected here and only alarm users: bitsandbytes looks for optional
# Hub-hosted CPU kernels; the chunker measures texts longer than the encoder's window on
# purpose (that is how it knows where to cut).
_QUIET = {
    "bitsandbytes": logging.ERROR,
    "bitsandbytes.backends.cpu.ops": logging.ERROR,
    "transformers.tokenization_utils_base": logging.ERROR,
    # A new MLflow store announces its table creation and migrations in every first run.
    "mlflow.store.db.utils": logging.WARNING,
    "alembic.runtime.migration": logging.WARNING,
}


def quiet_noisy_libraries() -> None:
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    quiet_library_progress()


def quiet_library_progress() -> None:
    """Switch off the model libraries' own tqdm bars for this process.

    Loading a model draws transformers' "Loading weights" bar (and the Hub its download
    bars) between a question and its answer: noise, not progress a user waits on. Our own
    long jobs draw through `core.progress` (plain tqdm) and datasets' bars have their own
    switch, so neither is touched. Called at a command's start, never on import.
    """
    import huggingface_hub.utils

    huggingface_hub.utils.disable_progress_bars()
    # transformers takes the Hub's setting when it is first imported, so a command that
    # never loads a model does not pay ~1 s to import it here; once imported, it has its
    # own switch.
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()


def setup_cli_logging(verbose: bool = False) -> None:
    """Log format and level for the `python -m …` commands (to stderr)."""
    quiet_noisy_libraries()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
