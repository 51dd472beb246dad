"""Square's Catalog reads on the emulator (SPEC paths `/v2/catalog/*`).

- SearchCatalogObjects (SPEC `SearchCatalogObjectsRequest`): `object_types` default to the top-level types,
  nested ones (ITEM_VARIATION…) only when asked; `begin_time` exclusive ("modified after"); deleted objects
  only with `include_deleted_objects`; `include_deleted_objects` and `include_category_path_to_root` never
  both true; `limit` ≤ 0 or > 1000 is ignored; `latest_time`; cursor paging. `query` is not emulated
  (refused, so nobody relies on a filter the emulator would ignore).
- ListCatalog (SPEC ListCatalog): comma-separated, case-insensitive `types` (default top-level types); pages of
  100; never returns deleted objects.
- BatchRetrieveCatalogObjects with related objects (a variation's item, an item's categories).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devstack.square_emulator.clock import canonical
from devstack.square_emulator.commerce import Commerce
from devstack.square_emulator.keys import COMMERCE, CURSORS
from devstack.square_emulator.paging import fingerprint, integer, lenient_limit
from devstack.square_emulator.responses import SquareFault, json_object, ok

TOP_LEVEL = (
    "ITEM",
    "CATEGORY",
    "TAX",
    "DISCOUNT",
    "MODIFIER_LIST",
    "PRICING_RULE",
    "PRODUCT_SET",
    "TIME_PERIOD",
    "MEASUREMENT_UNIT",
    "SUBSCRIPTION_PLAN",
    "ITEM_OPTION",
    "CUSTOM_ATTRIBUTE_DEFINITION",
    "QUICK_AMOUNTS_SETTINGS",
)
ALL_TYPES = (
    *TOP_LEVEL,
    "IMAGE",
    "ITEM_VARIATION",
    "MODIFIER",
    "SUBSCRIPTION_PLAN_VARIATION",
    "ITEM_OPTION_VAL",
    "AVAILABILITY_PERIOD",
)


def _types(wanted: Any, field: str) -> set[str]:
    if wanted is None or wanted == []:
        return set(TOP_LEVEL)
    values = wanted.split(",") if isinstance(wanted, str) else wanted
    if not isinstance(values, list):
        raise SquareFault(400, "EXPECTED_ARRAY", f"`{field}` must list object types.", field)
    types = {str(v).strip().upper() for v in values if str(v).strip()}
    unknown = sorted(types - set(ALL_TYPES))
    if unknown:
        raise SquareFault(400, "INVALID_ENUM_VALUE", f"Unknown catalog object types {unknown}.", field)
    return types


def _objects(commerce: Commerce, types: set[str]) -> dict[str, dict[str, Any]]:
    """Catalog objects by id: the stored top-level ones and, when asked, item variations as objects."""
    found = {oid: obj for oid, obj in commerce.catalog.items() if obj["type"] in types}
    if "ITEM_VARIATION" in types:
        found.update({vid: var for vid, (_, var) in commerce.variations.items()})
    return found


async def search_catalog(request: web.Request) -> web.Response:
    body = await json_object(request)
    if body.get("include_deleted_objects") and body.get("include_category_path_to_root"):
        raise SquareFault(
            400,
            "CONFLICTING_PARAMETERS",
            "include_deleted_objects and include_category_path_to_root cannot both be true.",
        )
    if body.get("query"):
        raise SquareFault(400, "BAD_REQUEST", "The emulator does not implement SearchCatalogObjects queries.", "query")
    commerce = request.app[COMMERCE]
    begin = canonical(body.get("begin_time")) or ""
    if body.get("begin_time") and not begin:
        raise SquareFault(400, "INVALID_TIME", "begin_time is not an RFC 3339 time.", "begin_time")
    objects = _objects(commerce, _types(body.get("object_types"), "object_types"))
    deleted_too = bool(body.get("include_deleted_objects"))

    def build() -> list[str]:
        found = [o for o in objects.values() if o["updated_at"] > begin and (deleted_too or not o["is_deleted"])]
        found.sort(key=lambda o: (o["updated_at"], o["id"]))
        return [o["id"] for o in found]

    query = {k: v for k, v in body.items() if k not in ("cursor", "limit")}
    limit = lenient_limit(body.get("limit"), high=1000, default=100, over="default")
    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint("SearchCatalogObjects", query), cursor=body.get("cursor"), limit=limit, build=build
    )
    result: dict[str, Any] = {}
    page = [objects[str(k)] for k in keys if str(k) in objects]
    if page:
        result["objects"] = page
        if body.get("include_related_objects"):
            result["related_objects"] = _related(commerce, page)
    if cursor:
        result["cursor"] = cursor
    if commerce.catalog_updated_at:
        result["latest_time"] = commerce.catalog_updated_at
    return ok(result)


async def list_catalog(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    objects = _objects(commerce, _types(request.query.get("types"), "types"))
    version = integer(request.query.get("catalog_version"), "catalog_version")

    def build() -> list[str]:
        found = [o for o in objects.values() if not o["is_deleted"] and (version is None or o["version"] == version)]
        return [o["id"] for o in sorted(found, key=lambda o: o["id"])]

    query = {k: v for k, v in request.query.items() if k != "cursor"}
    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint("ListCatalog", query), cursor=request.query.get("cursor"), limit=100, build=build
    )
    result: dict[str, Any] = {}
    page = [objects[str(k)] for k in keys if str(k) in objects]
    if page:
        result["objects"] = page
    if cursor:
        result["cursor"] = cursor
    return ok(result)


def _related(commerce: Commerce, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One level deep: a variation's item, an item's (and a variation's item's) categories."""
    parents = [commerce.variations[o["id"]][0] for o in objects if o["id"] in commerce.variations]
    related_ids = [p["id"] for p in parents]
    related_ids += [c["id"] for o in objects + parents for c in o.get("item_data", {}).get("categories", [])]
    own = {o["id"] for o in objects}
    return [commerce.catalog[i] for i in dict.fromkeys(related_ids) if i in commerce.catalog and i not in own]


async def batch_retrieve_catalog(request: web.Request) -> web.Response:
    body = await json_object(request)
    commerce = request.app[COMMERCE]
    ids = body.get("object_ids")
    if not isinstance(ids, list) or not ids:
        raise SquareFault(400, "MISSING_REQUIRED_PARAMETER", "`object_ids` must list object ids.", "object_ids")
    objects: list[dict[str, Any]] = []
    for object_id in ids:
        if object_id in commerce.catalog:
            objects.append(commerce.catalog[object_id])
        elif (found := commerce.variation(object_id)) is not None:
            objects.append(found[1])
    result: dict[str, Any] = {"objects": objects}
    if body.get("include_related_objects"):
        result["related_objects"] = _related(commerce, objects)
    return ok(result)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/catalog/search", search_catalog)
    app.router.add_get("/v2/catalog/list", list_catalog)
    app.router.add_post("/v2/catalog/batch-retrieve", batch_retrieve_catalog)
