"""The `tillbridge` command's own behaviour: settings errors and secret handling (no network)."""

from __future__ import annotations

import pytest

from tillbridge_cli.main import main


def test_missing_settings_are_named_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SQUARE_ACCESS_TOKEN", "SQUARE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")
    assert main(["square", "register-webhook", "--url", "https://x.example/api/square/webhooks"]) == 2
    assert "SQUARE_ACCESS_TOKEN: missing" in capsys.readouterr().err


def test_secret_values_are_read_from_the_environment_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EMPTY_SECRET", raising=False)
    assert main(["secret", "set", "--vault", "kv", "--name", "n", "--from-env", "EMPTY_SECRET"]) == 2
    assert "EMPTY_SECRET is empty" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(group in text for group in ("schema", "square", "dataverse", "secret"))
