from __future__ import annotations

import json

import pytest

from shared.pipeline.signature import is_valid_signature, sign
from tests.conftest import EXAMPLES, example

VECTORS = example("webhook_signature_vectors.json")["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_official_vectors(vector: dict[str, object]) -> None:
    valid = is_valid_signature(
        str(vector["body"]).encode("utf-8"),
        str(vector["signature_header"]),
        signature_key=str(vector["signature_key"]),
        notification_url=str(vector["notification_url"]),
    )
    assert valid is vector["expect_valid"]


def test_byte_exact_body_file_validates() -> None:
    body = (EXAMPLES / "webhooks.test_notification.json").read_bytes()
    vector = VECTORS[0]
    assert is_valid_signature(
        body,
        vector["signature_header"],
        signature_key=vector["signature_key"],
        notification_url=vector["notification_url"],
    )


def test_second_sdk_vector_with_angle_brackets() -> None:
    body = b'{"data":{"type":"webhooks","id":">id<"}}'
    header = "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U="
    assert is_valid_signature(
        body, header, signature_key="signature-key", notification_url="https://webhook.site/webhooks"
    )


def test_wrong_key_header_and_reformatted_body_fail() -> None:
    vector = VECTORS[0]
    body = str(vector["body"]).encode()
    kwargs = {"notification_url": vector["notification_url"]}
    assert not is_valid_signature(body, vector["signature_header"], signature_key="MCmhFRxGX82xMwg5FsaoQA", **kwargs)
    assert not is_valid_signature(body, "1z2n3DEJJiUPKcPzQo1ftvbxGdw=", signature_key=vector["signature_key"], **kwargs)
    pretty = json.dumps(json.loads(body), indent=2).encode()
    assert not is_valid_signature(pretty, vector["signature_header"], signature_key=vector["signature_key"], **kwargs)


def test_missing_header_or_body_is_invalid() -> None:
    assert not is_valid_signature(b"{}", None, signature_key="k", notification_url="https://x")
    assert not is_valid_signature(
        b"", sign(b"", signature_key="k", notification_url="https://x"), signature_key="k", notification_url="https://x"
    )


def test_sign_round_trips() -> None:
    header = sign(b'{"a":1}', signature_key="key", notification_url="https://h/api/square/webhooks")
    assert is_valid_signature(b'{"a":1}', header, signature_key="key", notification_url="https://h/api/square/webhooks")
    assert not is_valid_signature(
        b'{"a":2}', header, signature_key="key", notification_url="https://h/api/square/webhooks"
    )
