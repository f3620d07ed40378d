"""Third-party usage analytics off: this project never phones home.

Set on the way into a process (CLI `main`s, the server's `create_app`, the first Opik or
MLflow client), never on import. `setdefault`: a user's own choice in the environment wins.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    "OPIK_ANALYTICS_ENABLE": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    # MLflow's own artifact-upload bar: the project's jobs print their own progress.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def disable_third_party_telemetry() -> None:
    """Tell Opik, MLflow and friends not to send usage analytics (unless the user said)."""
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)
