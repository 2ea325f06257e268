"""The command line's frame: help, usage errors, exit codes."""
from __future__ import annotations

import io

import provision
from provisioning.exitcodes import ExitStatus


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_help_lists_exit_codes():
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "exit codes:" in out
    for status in ExitStatus:
        assert f"  {int(status)} " in out


def test_unknown_command_is_a_usage_error():
    code, _, err = run_cli("frobnicate")
    assert code == ExitStatus.USAGE
    assert "invalid choice: 'frobnicate'" in err


def test_no_command_is_a_usage_error():
    code, _, err = run_cli()
    assert code == ExitStatus.USAGE
    assert "the following arguments are required: COMMAND" in err
