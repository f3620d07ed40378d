"""Registry write side: register → candidate, promote only through the gate, rollback."""

from __future__ import annotations

import json

import pytest

from core.registry import RegistryError, accepted_stack, get_registry


def _register(name: str = "twin", metrics: dict | None = None) -> str:
    registry = get_registry()
    version, path = registry.allocate_version(name)
    (path / "merged").mkdir()
    registry.register(
        name,
        version,
        {"base_model": "offline:SmolLM2-135M-Instruct", "artifacts": {"merged": "merged"},
         "dataset_version": "abc", "metrics": metrics or {}},
    )  # fmt: skip
    return version


def test_register_promote_rollback_history(data_dir):
    registry = get_registry()
    v1, v2, v3 = _register(), _register(), _register()
    assert (v1, v2, v3) == ("v1", "v2", "v3")
    assert registry.tags("twin")["candidate"] == "v3"
    assert registry.resolve("registry:twin@candidate").version == "v3"
    assert registry.get("twin", "v1").artifact("merged").is_dir()
    with pytest.raises(RegistryError):
        registry.resolve("registry:twin@accepted")

    registry.promote("twin", "v1", reason="first")
    registry.promote("twin", "v2", reason="better")
    registry.promote("twin", "v3", reason="best")
    assert registry.resolve("registry:twin@accepted").version == "v3"
    registry.rollback("twin", reason="bad answers")
    assert registry.tags("twin")["accepted"] == "v2"
    registry.rollback("twin")
    assert registry.tags("twin")["accepted"] == "v1"
    with pytest.raises(RegistryError, match="no earlier accepted"):
        registry.rollback("twin")
    tags = registry.tags("twin")
    assert accepted_stack(tags) == ["v1"]
    events = [e["event"] for e in tags["history"]]
    assert events == ["register"] * 3 + ["promote"] * 3 + ["rollback"] * 2
    assert registry.names() == ["twin"]


def test_cli_promote_goes_through_the_gate(data_dir, monkeypatch, capsys):
    """The one unit test that decides the gate's answer (the real gate runs in test_train)."""
    import evals.promotion
    from finetune.__main__ import main

    calls = []
    decision = {"promote": False, "reasons": ["voice: candidate perplexity did not improve"]}

    def fake_gate(name: str, version: str) -> dict:
        calls.append((name, version))
        return {**decision, "metrics": {"candidate_perplexity": 10.0}}

    monkeypatch.setattr(evals.promotion, "evaluate_candidate", fake_gate)
    _register()
    assert main(["registry", "promote", "v1"]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "did not improve" in err
    assert "accepted" not in get_registry().tags("twin")

    assert main(["registry", "promote", "v1", "--force"]) == 2  # a forced override needs a reason
    assert main(["registry", "promote", "candidate", "--force", "--reason", "manual check"]) == 0
    tags = get_registry().tags("twin")
    assert tags["accepted"] == "v1"
    event = tags["history"][-1]
    assert event["forced"] is True and event["reason"] == "manual check"
    assert event["gate"]["promote"] is False

    decision["promote"], decision["reasons"] = True, ["voice improved"]
    _register()
    capsys.readouterr()
    assert main(["registry", "promote", "v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["forced"] is False
    assert calls == [("twin", "v1"), ("twin", "v1"), ("twin", "v2")]

    assert main(["registry", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["version"]: r["tags"] for r in rows} == {
        "v1": ["previously-accepted"],
        "v2": ["accepted"],
    }
    assert main(["registry", "rollback", "--reason", "regression"]) == 0
    assert get_registry().tags("twin")["accepted"] == "v1"
    capsys.readouterr()
    assert main(["registry", "show", "accepted", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "v1" and "accepted" in shown["tags"]
