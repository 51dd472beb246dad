"""`tillbridge config check`: the shipped file is valid (exit 0); a bad one lists every problem (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillbridge_cli.main import main


def test_config_check_valid_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", "config/tillbridge.yaml"]) == 0
    assert "config/tillbridge.yaml is valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nflows: {sales: maybe}\nmappings: {contact: {tb_nope: {from: note}}}\n", encoding="utf-8"
    )
    assert main(["config", "check", "--config", str(bad)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "2 problem(s)" in out
    assert ":2: flows.sales: must be true or false" in out and ":3: mappings.contact.tb_nope:" in out
