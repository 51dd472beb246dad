"""OpenTelemetry when Application Insights is configured, nothing at all otherwise (no import, no cost).

One correlation id, the Square event id, rides on every span (webhook → queue → worker) and the W3C
trace context travels in the queue message's properties, so the portal shows one end-to-end trace.
Custom metrics: events received/ignored/rejected, records written, failures by reason, Dataverse 429s,
end-to-end lag.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("tillbridge.observability")
_state: dict[str, Any] = {"enabled": False, "tracer": None, "meter": None, "instruments": {}}


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Wire the Azure Monitor distro once, if APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    env = os.environ if env is None else env
    if _state["enabled"] or not env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return bool(_state["enabled"])
    if env.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").lower() != "true":  # the worker would export too
        from azure.monitor.opentelemetry import configure_azure_monitor

        credential = None
        client_id = env.get("AzureWebJobsStorage__clientId") or env.get("SERVICEBUS_CONNECTION__clientId")
        if "Authorization=AAD" in env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""):
            from azure.identity import ManagedIdentityCredential

            credential = ManagedIdentityCredential(client_id=client_id or None)
        configure_azure_monitor(credential=credential, logger_name="tillbridge")
    use_providers(None, None)
    return True


def use_providers(tracer_provider: Any, meter_provider: Any) -> None:
    """Turn telemetry on with the given providers (None: the globally configured ones). Tests use this."""
    from opentelemetry import metrics, trace

    _state["tracer"] = (tracer_provider or trace.get_tracer_provider()).get_tracer("tillbridge")
    _state["meter"] = (meter_provider or metrics.get_meter_provider()).get_meter("tillbridge")
    _state["instruments"] = {}
    _state["enabled"] = True


def disable() -> None:
    _state.update({"enabled": False, "tracer": None, "meter": None, "instruments": {}})


def enabled() -> bool:
    return bool(_state["enabled"])


def _instrument(name: str, kind: str) -> Any:
    key = f"{kind}:{name}"
    if key not in _state["instruments"]:
        meter = _state["meter"]
        create = meter.create_histogram if kind == "histogram" else meter.create_counter
        _state["instruments"][key] = create(f"tillbridge_{name}")
    return _state["instruments"][key]


def add(name: str, value: float = 1.0, **attributes: str) -> None:
    if _state["enabled"]:
        _instrument(name, "counter").add(value, attributes)


def record(name: str, value: float, **attributes: str) -> None:
    if _state["enabled"]:
        _instrument(name, "histogram").record(value, attributes)


def inject(properties: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (traceparent) to a queue message's properties."""
    if _state["enabled"]:
        from opentelemetry.propagate import inject as propagate

        propagate(properties)
    return properties


@contextmanager
def span(name: str, event_id: str, parent: Mapping[str, str] | None = None, **attributes: Any) -> Iterator[None]:
    """A span carrying the correlation id; `parent` holds the trace context from a queue message."""
    if not _state["enabled"]:
        yield
        return
    from opentelemetry.propagate import extract

    context = extract(dict(parent)) if parent else None
    attrs = {"tillbridge.event_id": event_id, **{f"tillbridge.{k}": v for k, v in attributes.items() if v is not None}}
    with _state["tracer"].start_as_current_span(name, context=context, attributes=attrs):
        yield
