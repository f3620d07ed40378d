"""Logging setup shared by the command-line entry points."""

from __future__ import annotations

import logging

# Messages that are expected here and only alarm users: bitsandbytes looks for optional
# Hub-hosted CPU kernels; the chunker measures texts longer than the encoder's window on
# purpose (that is how it knows where to cut).
_QUIET = {
    "bitsandbytes": logging.ERROR,
    "bitsandbytes.backends.cpu.ops": logging.ERROR,
    "transformers.tokenization_utils_base": logging.ERROR,
}


def quiet_noisy_libraries() -> None:
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


def setup_cli_logging(verbose: bool = False) -> None:
    """Log format and level for the `python -m …` commands (to stderr)."""
    quiet_noisy_libraries()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
