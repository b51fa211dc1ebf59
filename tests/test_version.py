"""The frontend and the server are released together: one version in both places."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_repro import __version__
from jupyter_repro.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_labextension_version_matches_python_version():
    package = json.loads((REPO_ROOT / "labextension" / "package.json").read_text())

    assert package["version"] == __version__


def test_cli_prints_status_document(capsys):
    assert main(["status", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["version"] == __version__
    assert document["engine"]["name"] == "rattler"


def test_cli_rejects_an_unknown_engine(capsys):
    assert main(["status", "--engine", "pip"]) == 2

    assert "unknown engine 'pip'" in capsys.readouterr().err
