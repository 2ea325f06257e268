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


import pytest  # noqa: E402


@pytest.mark.parametrize("option, value, message", [
    ("--write-burst", "nan", "'nan' is not a finite number"),
    ("--write-burst", "inf", "'inf' is not a finite number"),
    ("--write-burst", "-1", "must be a number of writes, at least 1"),
    ("--write-burst", "0", "must be a number of writes, at least 1"),
    ("--max-writes-per-s", "nan", "'nan' is not a finite number"),
    ("--max-writes-per-s", "infinity", "'infinity' is not a finite number"),
    ("--max-writes-per-s", "0", "must be a positive number of writes per second"),
])
def test_float_options_refuse_non_finite_and_out_of_range_numbers(option, value, message):
    code, out, err = run_cli("run", "roster.csv", option, value)
    assert (code, out) == (ExitStatus.USAGE, "")
    assert err.endswith(f"provision.py run: error: argument {option}: {message}\n")


@pytest.mark.parametrize("argv, message", [
    (("watch", "inbox", "--interval", "nan"), "provision.py watch: error: argument --interval: must be a positive "
                                              "number of seconds"),
    (("sandbox", "serve", "--slow-ms", "inf"), "provision.py sandbox serve: error: argument --slow-ms: 'inf': give "
                                               "a finite number of milliseconds, 0 or more"),
])
def test_other_float_options_refuse_non_finite_numbers(argv, message):
    code, out, err = run_cli(*argv)
    assert (code, out) == (ExitStatus.USAGE, "")
    assert err.endswith(message + "\n")


def test_the_script_leaves_with_mains_status_and_everything_it_wrote(tmp_path, monkeypatch):
    # provision.py ends with os._exit (no interpreter teardown): the buffered streams must still be flushed
    monkeypatch.setenv("COLUMNS", "100")  # one width for both (a terminal the tests run in would set only one)
    import subprocess
    import sys
    from pathlib import Path

    script = Path(provision.__file__)
    roster = tmp_path / "r.csv"
    roster.write_text("givenName,surname\nAnn,Lee\n", encoding="utf-8")
    code, out, err = run_cli("--help")
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (code, out, err)
    done = subprocess.run([sys.executable, str(script), "frobnicate"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == ExitStatus.USAGE and "invalid choice: 'frobnicate'" in done.stderr
    code, out, err = run_cli("validate", str(roster))
    done = subprocess.run([sys.executable, str(script), "validate", str(roster)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == code and done.stdout == out and out
