"""The command's outer behaviour: --version, Ctrl-C and closed pipes end without a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import avworld
from avworld.cli import main

# A command that writes far more than a pipe buffer (64 KiB) or stops on Ctrl-C, run through the
# real `main` in a fresh interpreter so the interpreter's exit path (final flush) is covered too.
_SCRIPT = textwrap.dedent("""
    import argparse, sys
    import avworld.cli as cli

    def spam(args):
        for i in range(200_000):
            print("line", i)
        return 0

    def ctrl_c(args):
        raise KeyboardInterrupt

    def other_pipe(args):
        print("working")
        raise BrokenPipeError(32, "a worker's pipe broke")

    def lib_error(args):
        import numpy as np
        np.zeros(3).reshape(2, 2)  # a ValueError from inside numpy: a bug, not the user's input

    def input_error(args):
        from avworld.data.errors import DataError
        raise DataError("no trajectory has 4 frames; lower context")

    def bad_json(args):
        import json
        json.loads("{not json")

    def build():
        p = argparse.ArgumentParser()
        p.add_argument("what")
        p.set_defaults(func=None)
        return p

    def parser():
        p = build()
        real = p.parse_args
        def parse_args(argv=None):
            ns = real(argv)
            ns.func = {"spam": spam, "ctrl_c": ctrl_c, "other_pipe": other_pipe,
                       "lib_error": lib_error, "input_error": input_error, "bad_json": bad_json}[ns.what]
            return ns
        p.parse_args = parse_args
        return p

    cli.build_parser = parser
    sys.exit(cli.main(sys.argv[1:]))
""")


def _popen(what: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, what], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"avworld {avworld.__version__}"


def test_output_piped_into_head_ends_without_traceback():
    proc = _popen("spam")
    assert proc.stdout.readline().startswith(b"line 0")
    proc.stdout.close()  # the reader leaves, as `head -1` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 1


def test_ctrl_c_prints_one_line_and_no_traceback():
    proc = _popen("ctrl_c")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.decode().strip().splitlines()
    assert lines == ["avworld: interrupted"], lines


def test_a_broken_pipe_other_than_stdout_is_reported():
    proc = _popen("other_pipe")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out.decode().strip() == "working"
    assert "avworld: error: BrokenPipeError" in err.decode() and "worker's pipe" in err.decode()


def test_a_library_value_error_is_an_internal_error_with_traceback_not_bad_input():
    proc = _popen("lib_error")
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 1
    assert "Traceback" in err and "reshape" in err
    assert "avworld: internal error: ValueError" in err and "please report it" in err


def test_an_avworld_input_error_is_one_line_and_exit_2():
    proc = _popen("input_error")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == ["avworld: error: DataError: no trajectory has 4 frames; lower context"]


def test_a_file_that_does_not_parse_is_bad_input():
    proc = _popen("bad_json")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.decode().startswith("avworld: error: JSONDecodeError") and "Traceback" not in err.decode()
