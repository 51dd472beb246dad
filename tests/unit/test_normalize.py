from __future__ import annotations

import pytest

from shared.core.normalize import NormalizationError, display_email, fingerprint, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("  Amelia.Earhart@Example.COM ", "amelia.earhart@example.com"),
        ("jenkins+smorly@squareup.com", "jenkins+smorly@squareup.com"),
    ],
)
def test_email_key_is_trimmed_and_case_folded(raw: str, key: str) -> None:
    assert normalize_email(raw) == key


@pytest.mark.parametrize("raw", ["not-an-email", "a@b", "two@@example.com", "x y@example.com"])
def test_invalid_emails_are_rejected_without_echoing(raw: str) -> None:
    with pytest.raises(NormalizationError) as caught:
        normalize_email(raw)
    assert raw not in str(caught.value)


def test_display_email_keeps_local_part_and_lowers_domain() -> None:
    assert display_email(" Ada.L@Example.Com ") == "Ada.L@example.com"


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1-212-555-4240", "US", "+12125554240"),
        ("(212) 555-4250", "US", "+12125554250"),
        ("+12126668929", "GB", "+12126668929"),
        ("020 7946 0018", "GB", "+442079460018"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["call me", "12", "+1 555"])
def test_unparseable_phones_are_rejected(raw: str) -> None:
    with pytest.raises(NormalizationError):
        normalize_phone(raw, "US")


def test_fingerprint_is_stable_and_hides_the_value() -> None:
    assert fingerprint("a@b.com") == fingerprint("a@b.com")
    assert "a@b.com" not in fingerprint("a@b.com") and len(fingerprint("x")) == 12
