"""`adpulse kafka topics apply --stack`: what is refused before any host is reached, each as
one line. The runs on a real host are in tests/deploy/test_remote_admin.py."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli import app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_missing_outputs_file_is_one_line_with_the_command_that_writes_it(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "none.json"
    code, out, err = run("kafka", "topics", "apply", "--stack", "prod", "--outputs", str(missing))
    assert (code, out) == (1, "")
    assert err == (
        f"error: no outputs file {missing}: write it with `pulumi stack output --json "
        f"--show-secrets --stack prod > {missing}`\n"
    )


def test_stack_options_without_a_stack_are_refused_not_ignored() -> None:
    code, out, err = run("kafka", "topics", "apply", "--ssh-key", "/nonexistent/key")
    assert (code, out) == (1, "")
    assert err == "error: --ssh-key needs --stack NAME: it says how to reach a stack\n"
