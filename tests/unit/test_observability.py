"""Telemetry with in-memory OpenTelemetry exporters: one trace from webhook to worker, carrying the event
id; the custom metrics; and nothing at all when Application Insights is not configured."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.config.settings import WebhookSettings
from shared.monitoring import otel
from shared.monitoring.metrics import LogMetrics
from shared.monitoring.redaction import RedactingFilter, redact
from shared.pipeline.ingress import receive_webhook
from shared.pipeline.signature import sign
from shared.pipeline.worker import RetryPolicy, Worker
from tests.conftest import example
from tests.fakes import FakeQueue, FixedClock, flow_context

SETTINGS = WebhookSettings("k", "https://h.example/api/square/webhooks", 1 << 20)


@pytest.fixture
def telemetry() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    otel.use_providers(tracer_provider, MeterProvider(metric_readers=[reader]))
    yield spans, reader
    otel.disable()


def _metric_names(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_one_trace_from_webhook_through_queue_to_worker(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    spans, reader = telemetry
    body = json.dumps(example("customer.created.json")).encode()
    queue, metrics = FakeQueue(), LogMetrics()
    reply = asyncio.run(
        receive_webhook(
            body,
            sign(body, signature_key="k", notification_url=SETTINGS.notification_url),
            settings=SETTINGS,
            queue=queue,
            clock=FixedClock(),
            metrics=metrics,
        )
    )
    assert reply.status == 200
    (message,) = queue.sent
    assert "traceparent" in message.properties
    ctx = flow_context()
    ctx.metrics = metrics
    worker = Worker(ctx=ctx, retry_queue=FakeQueue(), policy=RetryPolicy())
    asyncio.run(worker.handle(message.body.encode(), properties=dict(message.properties)))
    finished = {s.name: s for s in spans.get_finished_spans()}
    webhook, process = finished["square_webhook"], finished["process_event"]
    assert webhook.context.trace_id == process.context.trace_id and process.parent.span_id == webhook.context.span_id
    event_id = "e12b5591-e0b6-4967-810a-307c7efcb1a7"
    assert webhook.attributes["tillbridge.event_id"] == process.attributes["tillbridge.event_id"] == event_id
    assert {"tillbridge_events_received", "tillbridge_records_written", "tillbridge_e2e_lag_seconds"} <= _metric_names(
        reader
    )


def test_failures_are_counted_by_reason(telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> None:
    _, reader = telemetry
    LogMetrics().increment("failures", flow="customers", reason="invalid_data")
    assert "tillbridge_failures" in _metric_names(reader)


def test_without_a_connection_string_nothing_is_configured() -> None:
    otel.disable()
    assert otel.configure({}) is False and not otel.enabled()
    assert otel.inject({"a": "b"}) == {"a": "b"}
    with otel.span("x", "e1"):
        pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("customer Ada.L+tag@Example.com failed", "customer [email] failed"),
        ("filter emailaddress1 eq 'a%40b.com'", "filter emailaddress1 eq '[email]'"),
        ("phone +12125550100 and (212) 555-0100 and 212-555-0100", "phone [phone] and [phone] and [phone]"),
        (
            "event 8e81973e-0bec-47b0-b898-d190f9ebdacc at 2026-11-22 18:59:25,117 v=12",
            "event 8e81973e-0bec-47b0-b898-d190f9ebdacc at 2026-11-22 18:59:25,117 v=12",
        ),
    ],
)
def test_redaction_masks_pii_and_leaves_ids_and_times(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redacting_filter_rewrites_records_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tillbridge.test.redaction")
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise ValueError("bad address ada@example.com")
    except ValueError:
        logger.exception("lookup for %s failed", "ada@example.com")
    assert "ada@example.com" not in caplog.text and "[email]" in caplog.text


def test_redaction_holds_for_a_handler_added_after_start_up() -> None:
    """Azure Monitor adds its handler after the app starts: records, not handlers, must be redacted."""
    from shared.monitoring import redaction

    previous = logging.getLogRecordFactory()
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    try:
        redaction.install()
        redaction.install()  # idempotent
        late = Capture()  # added after install, with no filter of its own
        logger = logging.getLogger("tillbridge.test.late_handler")
        logger.addHandler(late)
        logger.setLevel(logging.INFO)
        try:
            raise RuntimeError("no contact for +12125550100")
        except RuntimeError:
            logger.exception("lookup of %s failed", "ada@example.com")
        logger.removeHandler(late)
    finally:
        logging.setLogRecordFactory(previous)
    (record,) = captured
    shown = logging.Formatter().format(record)
    assert "ada@example.com" not in shown and "+12125550100" not in shown
    assert "[email]" in record.getMessage() and "[phone]" in shown and "RuntimeError" in shown
