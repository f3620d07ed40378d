"""`python -m finetune …`: the entry point, above every layer.

finetune/cli.py runs the commands whose work is finetune's own. `twin`, `registry promote`
and `watch` chain training with the evals gate; their work lives in evals/ (above
finetune), and this entry point is where the two are put together.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from evals.journey import journey_command
    from evals.promotion import promote_command
    from evals.watch import watch_command
    from finetune.cli import main as run

    commands = {"twin": journey_command, "registry promote": promote_command,
                "watch": watch_command}  # fmt: skip
    return run(argv, commands)


if __name__ == "__main__":
    raise SystemExit(main())
