"""The command-line contract: every subcommand exists with help and an example; errors are one line."""

import subprocess
import sys

import pytest

from btc.engine.config import parse_set_options
from btc.errors import BtcError
from tests.conftest import run_cli

COMMANDS = ["prepare", "audit", "models", "train", "cv", "benchmark", "report", "predict", "export", "demo"]


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in COMMANDS:
        assert command in out
    code, out, _ = run_cli(["prepare", "--help"], capsys)
    assert all(k in out for k in ("kaggle", "figshare", "folder", "phantom"))


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "prepare"] + ["prepare phantom", "prepare kaggle"])
def test_each_command_has_help_with_example(command, capsys):
    code, out, _ = run_cli([*command.split(), "--help"], capsys)
    assert code == 0 and "Example" in out


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "btc", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("btc ")


def test_set_options_are_typed():
    assert parse_set_options(["lr=0.01", "vflip=0.5", "split-column=split_dedup", "compile=true"]) == {
        "lr": 0.01, "vflip": 0.5, "split_column": "split_dedup", "compile": True}
    with pytest.raises(BtcError, match="FIELD=VALUE"):
        parse_set_options(["nonsense"])
    with pytest.raises(BtcError, match="expects a number"):
        parse_set_options(["epochs=many"])
