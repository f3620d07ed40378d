"""Does llama.cpp run on this CPU? Checked once, in a child process.

llama-cpp-python compiles for the CPU it is built on, and a CPU can advertise instructions
its virtual machine does not allow (AMX tiles on some cloud VMs): the library then kills
the whole process with SIGILL at the first token — no exception to catch. So before the
first use, a child process loads the small offline GGUF and generates two tokens; the
verdict is kept in the models cache per llama-cpp-python version and CPU, and
`get_llm`'s `auto` backend uses llama.cpp only where it runs. `make install` runs the same
check (`python -m core.llm.probe`) and removes a build that cannot run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import threading
from functools import lru_cache

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 180.0
_lock = threading.Lock()


def _cpu_key() -> str:
    """The CPU's identity and feature flags (what a build's instructions depend on)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            lines = [
                line for line in fh
                if line.startswith(("model name", "flags", "Features", "CPU part"))
            ]
        text = "".join(sorted(set(lines)))
    except OSError:
        import platform

        text = platform.processor() + platform.machine()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def llamacpp_runs() -> bool:
    """True when the installed llama-cpp-python generates on this CPU (probed once per
    version and CPU; False when it is not installed)."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return False
    from core.settings import get_settings

    version = importlib.metadata.version("llama-cpp-python")
    marker = get_settings().models_cache_dir / f"llamacpp-probe-{version}-{_cpu_key()}.json"
    with _lock:
        if marker.is_file():
            try:
                return bool(json.loads(marker.read_text())["runs"])
            except (ValueError, KeyError):
                pass
        try:
            done = subprocess.run(
                [sys.executable, "-m", "core.llm.probe"],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
            runs, detail = done.returncode == 0, (done.stderr or "")[-500:]
        except subprocess.TimeoutExpired:
            runs, detail = False, f"no answer within {PROBE_TIMEOUT_S:.0f}s"
        if not runs:
            log.warning(
                "llama.cpp (llama-cpp-python %s) does not run on this CPU (%s); generating "
                "with torch instead. Rebuild it for a portable instruction set: "
                "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON' "
                "pip install --force-reinstall --no-cache-dir llama-cpp-python==%s",
                version, detail.strip().splitlines()[-1:] or "crashed", version,
            )  # fmt: skip
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"runs": runs, "version": version}))
        return runs


def main() -> int:
    """Load the small offline GGUF and generate two tokens (exit 0 when that works)."""
    from llama_cpp import Llama

    from core.models import offline_llm_gguf
    from core.settings import OFFLINE_SMOLLM2

    model = Llama(str(offline_llm_gguf(OFFLINE_SMOLLM2)), n_ctx=128, n_threads=1, verbose=False)
    out = model("The capital of France is", max_tokens=2)
    print(json.dumps({"text": out["choices"][0]["text"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
