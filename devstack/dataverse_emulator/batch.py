"""`POST $batch`: multipart/mixed with changesets (atomic), per the Web API "Execute batch operations"
page: parts run in order; a failure inside a changeset rolls the changeset back; without
`Prefer: odata.continue-on-error` the batch stops at the first failure and answers 400 with that part."""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass

from aiohttp import web

from devstack.dataverse_emulator.server import API, Answer, Call, Handlers

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    412: "Precondition Failed",
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
    request_line, _, remainder = inner.lstrip("\r\n").partition("\n")
    method, target, _version = request_line.strip().split(" ", 2)
    headers, body = _headers_and_rest(remainder)
    path = target.split(API, 1)[-1] if API in target else target.lstrip("/")
    tail, _, query = path.partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
    content_id = outer.get("Content-ID") or headers.get("Content-ID")
    return Part(Call(method.upper(), tail, params, headers, body.strip().encode("utf-8"), base), content_id)


def parse(call: Call) -> list[list[Part] | Part]:
    """Top-level parts: a Part, or a list of Parts for a changeset."""
    items: list[list[Part] | Part] = []
    text = call.body.decode("utf-8")
    for chunk in _split(text, _boundary(call.header("Content-Type") or "")):
        headers, rest = _headers_and_rest(chunk)
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("multipart/mixed"):
            items.append([_request_part(inner, call.base) for inner in _split(rest, _boundary(content_type))])
        else:
            items.append(_request_part(chunk, call.base))
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
    """`$1` in a URL or an @odata.bind value names the row an earlier part of the changeset wrote."""
    if not created:
        return call
    tail, body = call.tail, call.body.decode("utf-8")
    for content_id, entity in created.items():
        tail = tail.replace(f"${content_id}", entity)
        body = body.replace(f'"${content_id}"', json.dumps("/" + entity))
    return Call(call.method, tail, call.query, call.headers, body.encode("utf-8"), call.base)


def _run_changeset(handlers: Handlers, parts: list[Part]) -> tuple[list[tuple[Answer, str | None]], bool]:
    from devstack.dataverse_emulator.app import route

    store = handlers.em.store
    snapshot = (copy.deepcopy(store.tables), handlers.em.writes_applied)
    answers: list[tuple[Answer, str | None]] = []
    created: dict[str, str] = {}
    for part in parts:
        answer = route(handlers, _resolve_references(part.call, created))
        if answer.status >= 400:
            store.tables, handlers.em.writes_applied = snapshot  # atomic: nothing of the changeset remains
            store.by_logical = {t.definition.logical_name: t for t in store.tables.values()}
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
    except ValueError as error:
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
