"""Thin async Dataverse Web API client (httpx): upsert by alternate key, conditional updates, queries,
Merge; one rate gate per application user; errors classified by status and Dataverse hex code.

Shapes and codes: Microsoft Learn "Use Upsert to Create or Update a record", "Perform conditional
operations", "Service protection API limits", "Web API error codes" (notes in docs/decisions/0003).
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from shared.adapters.dataverse_auth import TokenProvider
from shared.adapters.odata_batch import build_batch, build_read_batch, parse_batch_response
from shared.adapters.rate_gate import RateGate
from shared.core.errors import (
    ChangeTokenExpiredError,
    ConcurrencyError,
    TerminalError,
    ThrottledError,
    TransientError,
)
from shared.core.keys import key_segment
from shared.core.ports import BatchOperation, BatchPartResult, BulkTarget, ChangePage, UpsertResult
from shared.monitoring import otel, tracing

NOT_FOUND_CODES = {"0x80060891", "0x80040217"}  # RecordNotFoundByEntityKey, ObjectDoesNotExist
TRANSIENT_CODES = {"0x80090412", "0x80072322", "0x80072321", "0x80072326"}  # customisation lock, limits
TERMINAL_STATUS_REASON = {400: "crm_rejected", 403: "privilege_denied", 404: "crm_not_found", 413: "too_large"}
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")
_RETRY_STATUSES = {500, 502, 503, 504}
EXPIRED_VERSION_STAMP = "0x80044352"  # ExpiredVersionStamp: the change-tracking token is too old
# a bulk message runs for seconds (10–15 s per batch is published: reference/dataverse.md §12); the
# SDK's ServiceClient waits 4 minutes (§4). The per-request timeout of single calls stays short.
BULK_TIMEOUT_SECONDS = 240.0


def make_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The affinity cookie pins a client to one web server; refusing all cookies spreads the load."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
    # httpx copies a jar given to the constructor (dropping its policy), so set the policy on its own jar.
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After as seconds (Dataverse sends seconds; an HTTP date is accepted too)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def exchange_record(service: str, method: str, path: str, body: Any, response: httpx.Response) -> dict[str, Any]:
    """What an investigator needs of one API call; credentials never leave the client (scrubbed again)."""
    code, message = error_code(response) if response.status_code >= 400 else ("", "")
    try:
        response_body: Any = response.json() if response.content else None
    except ValueError:
        response_body = response.text[:2000]
    return {
        "service": service,
        "method": method,
        "path": path.split("?", maxsplit=1)[0],
        "query": path.partition("?")[2][:2000],
        "status": response.status_code,
        "error_code": code,
        "error_message": message,
        "retry_after": response.headers.get("Retry-After"),
        "correlation_id": response.headers.get("x-ms-service-request-id") or response.headers.get("REQ_ID"),
        "request_body": body,
        "response_body": response_body,
    }


def error_code(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error", {})
        return str(error.get("code", "")), str(error.get("message", ""))[:500]
    except (ValueError, AttributeError):  # not JSON, or JSON that is no error object (e.g. a list)
        return "", response.text[:200]


def classify(response: httpx.Response) -> Exception:
    """The one table: HTTP status + Dataverse error code → Transient or Terminal."""
    status = response.status_code
    code, message = error_code(response)
    text = f"Dataverse {status} {code}: {message}".strip()
    if status == 429:
        return ThrottledError(text, retry_after=retry_after_seconds(response.headers.get("Retry-After"), 5.0))
    if status == 412:
        return ConcurrencyError(text)
    if status in _RETRY_STATUSES or status == 401 or code in TRANSIENT_CODES or status == 408:
        return TransientError(text)
    return TerminalError(text, reason_code=TERMINAL_STATUS_REASON.get(status, "crm_error"))


def entity_id_from(response: httpx.Response) -> str:
    match = _ENTITY_ID.search(response.headers.get("OData-EntityId", ""))
    if match is None:
        raise TransientError("Dataverse response had no OData-EntityId header")
    return match.group(1)


def bulk_target(entity_set: str, entity: str, target: BulkTarget) -> dict[str, Any]:
    """One UpsertMultiple target: `@odata.type`, the row in `@odata.id` (by primary id or alternate key),
    and the columns — with the key's columns removed from them (key in the body as well as in @odata.id
    makes the create path fail: reference/dataverse.md §12)."""
    if target.entity_id is not None:
        address = f"{entity_set}({target.entity_id})"
        payload = {k: v for k, v in target.payload.items() if k != f"{entity}id"}
    else:
        address = entity_set + key_segment(target.key)
        payload = {k: v for k, v in target.payload.items() if k not in target.key}
    return {"@odata.type": f"Microsoft.Dynamics.CRM.{entity}", "@odata.id": address, **payload}


@dataclass(frozen=True)
class AppUser:
    """One Dataverse application user: its token and its gate (the limits are counted per user)."""

    tokens: TokenProvider
    gate: RateGate


class DataverseClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        http: httpx.AsyncClient,
        tokens: TokenProvider | None = None,
        gate: RateGate | None = None,
        users: Sequence[AppUser] = (),
        max_inline_wait_seconds: float = 20.0,
    ) -> None:
        self._root = f"{base_url.rstrip('/')}/api/data/{api_version}/"
        if users:
            self._users = list(users)
        elif tokens is not None and gate is not None:
            self._users = [AppUser(tokens, gate)]
        else:
            raise ValueError("DataverseClient needs tokens and a gate, or users")
        self._http = http
        self._max_inline_wait = max_inline_wait_seconds

    def _pick(self) -> AppUser:
        """The application user with the most room: not paused first, then the fewest in flight per slot
        (several users scale past one user's budget: reference/dataverse.md §12)."""
        return min(self._users, key=lambda u: (u.gate.paused_for() > 0, u.gate.in_flight / max(1, u.gate.limit)))

    async def _headers(self, user: AppUser, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {await user.tokens.token()}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Content-Type": "application/json; charset=utf-8",
        }
        headers.update(extra or {})
        return headers

    async def _once(
        self,
        user: AppUser,
        method: str,
        path: str,
        body: Any,
        headers: Mapping[str, str] | None,
        *,
        timeout: float | None = None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {"timeout": timeout} if timeout else {}
        async with user.gate.slot():
            if isinstance(body, bytes):  # a $batch body, already encoded with its own Content-Type
                response = await self._http.request(
                    method, self._root + path, content=body, headers=await self._headers(user, headers), **extra
                )
            else:
                response = await self._http.request(
                    method, self._root + path, json=body, headers=await self._headers(user, headers), **extra
                )
        hint = response.headers.get("x-ms-dop-hint")
        if hint and hint.isdigit():
            user.gate.hint(int(hint))
        tracing.exchange(exchange_record("dataverse", method, path, body, response))
        return response

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One logical request: waits out short throttles inline, retries 5xx/network a few times."""
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            user = self._pick()
            try:
                response = await self._once(user, method, path, body, headers, timeout=timeout)
            except httpx.TransportError as error:
                if attempt >= 3:
                    raise TransientError(f"Dataverse unreachable: {type(error).__name__}") from error
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if response.status_code == 429:
                otel.add("dataverse_throttled", code=error_code(response)[0])
                pause = retry_after_seconds(response.headers.get("Retry-After"), 2.0**attempt)
                user.gate.pause(pause)
                if waited + pause > self._max_inline_wait:
                    raise classify(response)
                waited += pause
                continue
            if response.status_code == 401 and attempt == 1:
                user.tokens.invalidate()
                continue
            if response.status_code in _RETRY_STATUSES and attempt < 3:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            return response

    @staticmethod
    def _is_not_found(response: httpx.Response) -> bool:
        return response.status_code == 404 and error_code(response)[0] in NOT_FOUND_CODES | {""}

    async def upsert_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> UpsertResult:
        response = await self.send("PATCH", entity_set + key_segment(key), dict(payload))
        if response.status_code not in (200, 201, 204):
            raise classify(response)
        return UpsertResult(entity_id_from(response))

    async def update(
        self, entity_set: str, entity_id: str, payload: Mapping[str, Any], *, must_exist: bool = True
    ) -> None:
        headers = {"If-Match": "*"} if must_exist else None
        response = await self.send("PATCH", f"{entity_set}({entity_id})", dict(payload), headers)
        if response.status_code not in (200, 204):
            raise classify(response)

    async def update_by_key(self, entity_set: str, key: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        response = await self.send("PATCH", entity_set + key_segment(key), dict(payload), {"If-Match": "*"})
        if self._is_not_found(response):
            return None
        if response.status_code not in (200, 204):
            raise classify(response)
        return entity_id_from(response)

    async def _get_one(self, path: str, select: Sequence[str]) -> dict[str, Any] | None:
        response = await self.send("GET", f"{path}?$select={','.join(select)}")
        if self._is_not_found(response):
            return None
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json())

    async def get(self, entity_set: str, entity_id: str, select: Sequence[str]) -> dict[str, Any] | None:
        return await self._get_one(f"{entity_set}({entity_id})", select)

    async def get_by_key(self, entity_set: str, key: Mapping[str, str], select: Sequence[str]) -> dict[str, Any] | None:
        return await self._get_one(entity_set + key_segment(key), select)

    async def query(
        self, entity_set: str, filter_expr: str, select: Sequence[str], top: int = 50
    ) -> list[dict[str, Any]]:
        path = f"{entity_set}?$select={','.join(select)}&$filter={quote(filter_expr, safe='')}&$top={top}"
        response = await self.send("GET", path)
        if response.status_code != 200:
            raise classify(response)
        return list(response.json().get("value", []))

    async def merge(self, entity: str, target_id: str, subordinate_id: str, update_content: Mapping[str, Any]) -> None:
        odata_type = f"Microsoft.Dynamics.CRM.{entity}"
        body = {
            "Target": {"@odata.type": odata_type, f"{entity}id": target_id},
            "Subordinate": {"@odata.type": odata_type, f"{entity}id": subordinate_id},
            "UpdateContent": {"@odata.type": odata_type, **update_content},
            "PerformParentingChecks": False,
        }
        response = await self.send("POST", "Merge", body)
        if response.status_code not in (200, 204):
            raise classify(response)

    async def batch(self, operations: Sequence[BatchOperation]) -> list[BatchPartResult]:
        """All operations in one request and one changeset: every write lands, or none does."""
        if not operations:
            return []
        content_type, body = build_batch(operations, self._root)
        response = await self.send("POST", "$batch", body, {"Content-Type": content_type})
        results = parse_batch_response(response.headers.get("Content-Type", ""), response.content)
        failed = next((r for r in results if r.status >= 400), None)
        if response.status_code >= 400 or failed is not None:
            if failed is None:
                raise classify(response)
            part = httpx.Response(
                failed.status, json=failed.body if isinstance(failed.body, dict) else {}, headers=failed.headers
            )
            raise classify(part)
        return results

    async def query_many(
        self, entity_set: str, filters: Sequence[str], select: Sequence[str], top: int = 5000
    ) -> list[list[dict[str, Any]]]:
        """Several queries in one `$batch` of GET parts: one request toward the request limit (the
        execution time still counts per query: api-limits "batch requests"), rows per filter in order."""
        if not filters:
            return []
        paths = [f"{entity_set}?$select={','.join(select)}&$filter={quote(f, safe='')}&$top={top}" for f in filters]
        content_type, body = build_read_batch(paths, self._root)
        response = await self.send(
            "POST", "$batch", body, {"Content-Type": content_type}, timeout=BULK_TIMEOUT_SECONDS
        )  # the parts run one after another on the server
        results = parse_batch_response(response.headers.get("Content-Type", ""), response.content)
        failed = next((part for part in results if part.status >= 400), None)
        if failed is not None:  # the batch stops at the first failed part and answers 400 with it
            body_json = failed.body if isinstance(failed.body, dict) else {}
            raise classify(httpx.Response(failed.status, json=body_json, headers=failed.headers))
        if response.status_code >= 400:
            raise classify(response)
        if len(results) != len(filters):
            raise TransientError(f"$batch answered {len(results)} parts for {len(filters)} queries")
        rows = []
        for part in results:
            if part.status != 200:
                body_json = part.body if isinstance(part.body, dict) else {}
                raise classify(httpx.Response(part.status, json=body_json, headers=part.headers))
            rows.append(list((part.body or {}).get("value", [])))
        return rows

    def parallelism(self) -> int:
        """Requests to keep in flight: the gate's limit (x-ms-dop-hint, capped by this instance's share)."""
        return sum(user.gate.limit for user in self._users)

    async def upsert_multiple(self, entity_set: str, entity: str, targets: Sequence[BulkTarget]) -> None:
        """UpsertMultiple (reference/dataverse.md §4): each target names its row in `@odata.id` only."""
        if not targets:
            return
        body = {"Targets": [bulk_target(entity_set, entity, target) for target in targets]}
        response = await self.send(
            "POST", f"{entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple", body, timeout=BULK_TIMEOUT_SECONDS
        )
        if response.status_code not in (200, 204):
            raise classify(response)

    async def create_multiple(self, entity_set: str, entity: str, payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        """CreateMultiple: the new rows' ids, in the order of the payloads."""
        if not payloads:
            return []
        odata_type = f"Microsoft.Dynamics.CRM.{entity}"
        body = {"Targets": [{"@odata.type": odata_type, **payload} for payload in payloads]}
        response = await self.send(
            "POST", f"{entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", body, timeout=BULK_TIMEOUT_SECONDS
        )
        if response.status_code != 200:
            raise classify(response)
        ids = [str(i) for i in response.json().get("Ids", [])]
        if len(ids) != len(payloads):
            raise TransientError(f"CreateMultiple returned {len(ids)} ids for {len(payloads)} rows")
        return ids

    async def who_am_i(self) -> dict[str, Any]:
        response = await self.send("GET", "WhoAmI")
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json())

    # ---- change tracking (CRM → Square) ----

    def _relative(self, link: str) -> str:
        """A next/delta link (absolute, as Dataverse returns it) as a path under this client's API root."""
        parts = urlsplit(link)
        path = parts.path
        marker = "/api/data/"
        if marker in path:
            path = path.split(marker, 1)[1].split("/", 1)[1]  # drop the version segment: ours is used
        return f"{path}?{parts.query}" if parts.query else path

    async def read_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> ChangePage:
        """Change tracking ("Use change tracking to synchronize data with external systems"): a full load
        when `link` is None, else the page a next or delta link names. Changed rows come as rows, deleted ones
        as `$deletedEntity` (or OData 4.01 `@removed`) entries; the delta link comes on the last page only."""
        path = self._relative(link) if link else f"{entity_set}?$select={','.join(select)}"
        prefer = f"odata.track-changes,odata.maxpagesize={page_size}"
        response = await self.send("GET", path, headers={"Prefer": prefer})
        if response.status_code != 200:
            code, message = error_code(response)
            if code == EXPIRED_VERSION_STAMP or ("expired" in message.lower() and "full sync" in message.lower()):
                raise ChangeTokenExpiredError(f"Dataverse {response.status_code} {code}: {message}")
            raise classify(response)
        document = response.json()
        rows, deleted = [], []
        for item in document.get("value", []):
            removed = "@removed" in item or str(item.get("@odata.context", "")).endswith("$deletedEntity")
            if removed:
                deleted.append(_removed_id(item))
            else:
                rows.append(dict(item))
        return ChangePage(
            rows, [d for d in deleted if d], document.get("@odata.nextLink"), document.get("@odata.deltaLink")
        )

    async def query_page(
        self, entity_set: str, filter_expr: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of `$filter` results (`Prefer: odata.maxpagesize`), and the next page's link."""
        path = (
            self._relative(link)
            if link
            else f"{entity_set}?$select={','.join(select)}&$filter={quote(filter_expr, safe='')}"
        )
        response = await self.send("GET", path, headers={"Prefer": f"odata.maxpagesize={page_size}"})
        if response.status_code != 200:
            raise classify(response)
        document = response.json()
        return list(document.get("value", [])), document.get("@odata.nextLink")


def _removed_id(item: dict[str, Any]) -> str:
    """The row id of a deleted entry: `id` ($deletedEntity), or the key in `@id` (`contacts(<guid>)`)."""
    if item.get("id"):
        return str(item["id"])
    match = _ENTITY_ID.search(str(item.get("@id", "")))
    return match.group(1) if match else ""
