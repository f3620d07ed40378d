"""Settings written the way people write them, and one clear line when one does not parse.

List settings take a comma-separated list or JSON; a bad value from the environment or
`.env` makes every entry point (ingest, graph, finetune, evals, server.py) print one line
naming the variable, the problem and an example, and exit 2, without a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, SettingsInvalid, get_settings, reset_settings

ROOT = Path(__file__).resolve().parent.parent
LIST_SETTINGS = [
    name
    for name, field in Settings.model_fields.items()
    if typing.get_origin(field.annotation) is list
]


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment, with the settings re-read after each change."""
    yield monkeypatch
    reset_settings()


def _read(env: pytest.MonkeyPatch, **values: str) -> Settings:
    for name, value in values.items():
        env.setenv(name, value)
    reset_settings()
    return get_settings()


def test_every_list_setting_is_found() -> None:
    assert {"CRAWL_ALLOW_HOSTS", "LLM_MODEL_ALLOWLIST"} <= set(LIST_SETTINGS)


@pytest.mark.parametrize("name", LIST_SETTINGS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("a,,b,", ["a", "b"]),
        ('["a", "b"]', ["a", "b"]),
        ("[]", []),
        ("", []),
    ],
)
def test_list_settings_take_commas_or_json(
    env: pytest.MonkeyPatch, name: str, value: str, expected: list[str]
) -> None:
    assert getattr(_read(env, **{name: value}), name) == expected


def test_host_map_takes_pairs_or_json(env: pytest.MonkeyPatch) -> None:
    pairs = "https://medium.com=http://127.0.0.1:9/m, https://github.com=http://127.0.0.1:9/g"
    assert _read(env, CRAWL_HOST_MAP=pairs).CRAWL_HOST_MAP == {
        "https://medium.com": "http://127.0.0.1:9/m",
        "https://github.com": "http://127.0.0.1:9/g",
    }
    json_map = '{"https://medium.com": "http://127.0.0.1:9/m"}'
    assert _read(env, CRAWL_HOST_MAP=json_map).CRAWL_HOST_MAP == {
        "https://medium.com": "http://127.0.0.1:9/m"
    }


@pytest.mark.parametrize(
    ("name", "value", "problem", "example"),
    [
        ("CRAWL_ALLOW_HOSTS", '["127.0.0.1"', "not valid JSON", "CRAWL_ALLOW_HOSTS=127.0.0.1,"),
        ("LLM_MODEL_ALLOWLIST", '{"a": 1}', "JSON dict, expected a list", "LLM_MODEL_ALLOWLIST="),
        ("CRAWL_HOST_MAP", "medium", "'medium' is not FROM=TO", "CRAWL_HOST_MAP=https://"),
        ("LLM_RETRIES", "three", "valid integer", "LLM_RETRIES=3"),
        ("LLM_RETRIES", "0", "greater than or equal to 1", "LLM_RETRIES=3"),
        ("LLM_SCRIPT", "klingon", "'latin'", "LLM_SCRIPT=latin"),
        ("ALLOW_PROMPT_OVERRIDES", "maybe", "valid boolean", "ALLOW_PROMPT_OVERRIDES=false"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_naming_it(
    env: pytest.MonkeyPatch, name: str, value: str, problem: str, example: str
) -> None:
    with pytest.raises(SettingsInvalid) as caught:
        _read(env, **{name: value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {name}=")
    assert problem in message and f"(e.g. {example}" in message


def test_secrets_are_not_echoed(env: pytest.MonkeyPatch) -> None:
    from core.settings import _problem

    line = _problem("QDRANT_API_KEY", "bad", "s3cr3t-value")
    assert "s3cr3t" not in line and "QDRANT_API_KEY" in line


# ------------------------------------------------------------------ every entry point

ENTRY_POINTS = {
    "ingest": ["-m", "ingest", "status"],
    "graph": ["-m", "graph", "ask", "hello"],
    "finetune": ["-m", "finetune", "registry", "list"],
    "evals": ["-m", "evals", "gate", "--version", "v1"],
    "server": ["server.py"],
}


def _run(args: list[str], cwd: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "MONGODB_URI")}
    base.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), **env)
    script = [str(ROOT / a) if a.endswith(".py") else a for a in args]
    return subprocess.run(
        [sys.executable, *script], cwd=cwd, env=base, capture_output=True, text=True, timeout=300
    )


def _assert_one_line(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid setting {name}="), lines[0]
    assert "(e.g. " in lines[0]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_report_a_bad_setting_in_one_line(data_dir: Path, entry: str) -> None:
    result = _run(ENTRY_POINTS[entry], ROOT, data_dir, LLM_RETRIES="three")
    _assert_one_line(result, "LLM_RETRIES")


def test_a_bad_value_in_dotenv_is_reported_the_same(data_dir: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / ".env").write_text('LLM_MODEL_ALLOWLIST=["unclosed"\n')
    result = _run(ENTRY_POINTS["ingest"], workdir, data_dir)
    _assert_one_line(result, "LLM_MODEL_ALLOWLIST")


def test_ingest_add_with_a_comma_free_host_list(data_dir: Path, tmp_path: Path) -> None:
    """The reported crash: `CRAWL_ALLOW_HOSTS=127.0.0.1 python -m ingest add …`."""
    note = tmp_path / "note.md"
    note.write_text("# A note\n\nWritten by hand.\n")
    result = _run(
        ["-m", "ingest", "add", str(note), "--author", "Maya Lindqvist", "--no-sync"],
        ROOT,
        data_dir,
        CRAWL_ALLOW_HOSTS="127.0.0.1",
        LLM_MODEL_ALLOWLIST="offline:SmolLM2-135M-Instruct,offline:Qwen2.5-Coder-0.5B-Instruct",
    )
    assert result.returncode == 0, result.stderr
    assert "collected: 1 added" in result.stdout
