"""`POST $batch`: multipart/mixed with changesets (atomic), per the Web API "Execute batch operations"
page: parts run in order; a failure inside a changeset rolls the changeset back; without
`Prefer: odata.continue-on-error` the batch stops at the first failure and answers 400 with that part.
At most 1,000 requests per batch, batches don't nest, and GET is not allowed inside a changeset; a request line's
URL is percent-decoded once, like an HTTP request's (reference/dataverse.md §4)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from devstack.dataverse_emulator.addressing import request_path
from devstack.dataverse_emulator.server import API, Answer, Call, Handlers
from devstack.dataverse_emulator.store import DataverseFault

MAX_REQUESTS = 1000

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Part:
    call: Call
    content_id: str | None


def _boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart body without a boundary")
    return match.group(1)


def _split(body: str, boundary: str) -> list[str]:
    chunks = body.split(f"--{boundary}")
    return [chunk.strip("\r\n") for chunk in chunks[1:] if not chunk.startswith("--")]


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    head, _, rest = text.partition("\r\n\r\n") if "\r\n\r\n" in text else text.partition("\n\n")
    headers = {}
    for line in head.splitlines():
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return headers, rest


def _request_part(text: str, base: str) -> Part:
    outer, inner = _headers_and_rest(text)
    if outer.get("Content-Type", "").startswith("multipart/mixed"):
        raise DataverseFault(400, "0x80060888", "A changeset cannot contain another changeset or batch.")
    request_line, _, remainder = inner.lstrip("\r\n").partition("\n")
    method, target, _version = request_line.strip().split(" ", 2)
    headers, body = _headers_and_rest(remainder)
    split = urlsplit(target)
    path = request_path(split.path.split(API, 1)[-1] if API in split.path else split.path.lstrip("/"))
    params = dict(parse_qsl(split.query, keep_blank_values=True))
    content_id = outer.get("Content-ID") or headers.get("Content-ID")
    return Part(Call(method.upper(), path, params, headers, body.strip().encode("utf-8"), base), content_id)


def parse(call: Call) -> list[list[Part] | Part]:
    """Top-level parts: a Part, or a list of Parts for a changeset."""
    items: list[list[Part] | Part] = []
    text = call.body.decode("utf-8")
    for chunk in _split(text, _boundary(call.header("Content-Type") or "")):
        headers, rest = _headers_and_rest(chunk)
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("multipart/mixed"):
            changeset = [_request_part(inner, call.base) for inner in _split(rest, _boundary(content_type))]
            if any(part.call.method == "GET" for part in changeset):
                raise DataverseFault(400, "0x80060888", "GET requests are not allowed inside a changeset.")
            items.append(changeset)
        else:
            items.append(_request_part(chunk, call.base))
    flat = [part for item in items for part in (item if isinstance(item, list) else [item])]
    if any(part.call.tail == "$batch" for part in flat):
        raise DataverseFault(400, "0x80060888", "Batch requests cannot be nested inside another batch.")
    total = len(flat)
    if total > MAX_REQUESTS:
        raise DataverseFault(
            400,
            "0x80060888",
            f"The current batch message contains too many parts. Only batch messages with a maximum number of "
            f"'{MAX_REQUESTS}' query operations, including changeset operations, are allowed.",
        )
    return items


def _render(answer: Answer, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {answer.status} {_STATUS_TEXT.get(answer.status, '')}".rstrip()]
    lines += [f"{k}: {v}" for k, v in answer.headers.items()]
    if answer.body is not None:
        lines += ["Content-Type: application/json; odata.metadata=minimal", "", json.dumps(answer.body)]
    else:
        lines += [""]
    return "\r\n".join(lines)


def _resolve_references(call: Call, created: dict[str, str]) -> Call:
    """`$1` as a URL or an @odata.bind value names the row an earlier part of the changeset wrote."""
    if not created:
        return call
    tail, body = call.tail, call.body.decode("utf-8")
    for content_id, entity in created.items():
        if tail == f"${content_id}":
            tail = entity
        body = body.replace(f'"${content_id}"', json.dumps("/" + entity))
    return Call(call.method, tail, call.query, call.headers, body.encode("utf-8"), call.base)


def _run_changeset(handlers: Handlers, parts: list[Part]) -> tuple[list[tuple[Answer, str | None]], bool]:
    from devstack.dataverse_emulator.app import route

    applied = handlers.em.writes_applied
    answers: list[tuple[Answer, str | None]] = []
    created: dict[str, str] = {}
    with handlers.em.store.transaction() as transaction:
        for part in parts:
            answer = route(handlers, _resolve_references(part.call, created))
            if answer.status >= 400:
                transaction.rollback()  # atomic: nothing of the changeset remains
                handlers.em.writes_applied = applied
                return [(answer, part.content_id)], False
            entity = answer.headers.get("OData-EntityId", "")
            if part.content_id and API in entity:
                created[part.content_id] = entity.split(API, 1)[1]
            answers.append((answer, part.content_id))
    return answers, True


def batch_response(handlers: Handlers, call: Call) -> web.Response:
    from devstack.dataverse_emulator.app import route

    try:
        items = parse(call)
    except DataverseFault as fault:
        body = {"error": {"code": fault.code, "message": fault.message}}
        return web.json_response(body, status=fault.status)
    except (ValueError, UnicodeDecodeError) as error:
        body = {"error": {"code": "0x80040203", "message": f"Bad $batch body: {error}"}}
        return web.json_response(body, status=400)
    keep_going = "odata.continue-on-error" in (call.header("Prefer") or "")
    boundary = f"batchresponse_{uuid.uuid4()}"
    rendered: list[str] = []
    failed = False
    for item in items:
        if isinstance(item, list):
            answers, ok = _run_changeset(handlers, item)
            inner = f"changesetresponse_{uuid.uuid4()}"
            inner_text = "".join(f"--{inner}\r\n{_render(a, cid)}\r\n" for a, cid in answers) + f"--{inner}--"
            rendered.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n{inner_text}")
        else:
            answer = route(handlers, item.call)
            ok = answer.status < 400
            rendered.append(_render(answer, item.content_id))
        if not ok:
            failed = True
            if not keep_going:
                rendered = rendered[-1:]
                break
    text = "".join(f"--{boundary}\r\n{part}\r\n" for part in rendered) + f"--{boundary}--\r\n"
    status = 400 if failed and not keep_going else 200
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"}
    return web.Response(status=status, body=text.encode("utf-8"), headers=headers)
