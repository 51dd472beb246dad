"""OData `$batch` with one changeset: several writes in one HTTP request, applied all or nothing
(Web API "Execute batch operations using the Web API": multipart/mixed, application/http parts,
Content-ID per part; a failed part rolls the changeset back)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from shared.core.ports import BatchOperation, BatchPartResult


def build_batch(operations: Sequence[BatchOperation], root: str) -> tuple[str, bytes]:
    """(Content-Type header, body) for one atomic changeset holding every operation, in order."""
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = []
    for number, operation in enumerate(operations, 1):
        lines = [
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {number}",
            "",
            f"{operation.method} {root}{operation.path} HTTP/1.1",
            "Content-Type: application/json; type=entry",
        ]
        lines += [f"{name}: {value}" for name, value in operation.headers.items()]
        lines += ["", json.dumps(operation.body or {}, default=str)]
        parts.append(f"--{changeset}\r\n" + "\r\n".join(lines) + "\r\n")
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        + "".join(parts)
        + f"--{changeset}--\r\n--{batch}--\r\n"
    )
    return f"multipart/mixed; boundary={batch}", body.encode("utf-8")


def build_read_batch(paths: Sequence[str], root: str) -> tuple[str, bytes]:
    """(Content-Type header, body) for GET parts outside any changeset (reads may not sit in one); a GET
    inside a $batch may be up to 64 KB long (reference/dataverse.md §4)."""
    batch = f"batch_{uuid.uuid4()}"
    parts = []
    for path in paths:
        lines = [
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"GET {root}{path} HTTP/1.1",
            "Accept: application/json",
            "",
            "",
        ]
        parts.append(f"--{batch}\r\n" + "\r\n".join(lines))
    body = "".join(parts) + f"--{batch}--\r\n"
    return f"multipart/mixed; boundary={batch}", body.encode("utf-8")


def _boundary(content_type: str) -> str | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    return match.group(1) if match else None


def _sections(text: str, boundary: str) -> list[str]:
    return [chunk.strip("\r\n") for chunk in text.split(f"--{boundary}")[1:] if not chunk.startswith("--")]


def _split_head(text: str) -> tuple[dict[str, str], str]:
    separator = "\r\n\r\n" if "\r\n\r\n" in text else "\n\n"
    head, _, rest = text.partition(separator)
    headers = {}
    for line in head.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _part(text: str) -> BatchPartResult:
    _, http_message = _split_head(text)
    status_line, _, rest = http_message.lstrip("\r\n").partition("\n")
    status = int(status_line.split(" ")[1])
    headers, body = _split_head(rest)
    body = body.strip()
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return BatchPartResult(status, headers, parsed)


def parse_batch_response(content_type: str, body: bytes) -> list[BatchPartResult]:
    """Every part's status, headers and body, changesets flattened, in order."""
    boundary = _boundary(content_type)
    if boundary is None:
        return []
    results: list[BatchPartResult] = []
    for section in _sections(body.decode("utf-8"), boundary):
        headers, rest = _split_head(section)
        inner = _boundary(headers.get("content-type", ""))
        if headers.get("content-type", "").startswith("multipart/mixed") and inner:
            results += [_part(chunk) for chunk in _sections(rest, inner)]
        else:
            results.append(_part(section))
    return results
