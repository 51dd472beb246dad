"""Monitoring: record timelines (tracing), OpenTelemetry (otel), log redaction, metrics and the clock."""
