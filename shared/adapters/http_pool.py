"""One HTTP transport for the blocking Azure SDK clients, with as many pooled connections as the I/O pool
has threads (requests keeps 10 a host by default: with 32 threads the rest were opened and thrown away on
every call — "Connection pool is full, discarding connection")."""

from __future__ import annotations

from functools import cache
from typing import Any

IO_CONNECTIONS = 64


@cache
def pooled_transport() -> Any:
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=IO_CONNECTIONS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)
