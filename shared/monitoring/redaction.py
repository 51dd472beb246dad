"""Masks email addresses and phone numbers in every log record, whichever handler ships it.

Our own log lines carry ids only; this is the second line of defence for third-party messages and
exception texts. It redacts the *record* when it is made (a log-record factory), not a handler's view of
it, so handlers added later (Azure Monitor's exporter is added after start-up) see only redacted text.
Snapshots that must keep PII live in Blob Storage behind the admin key, not in logs.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"(?<![\w/:-])(?:\+|%2B)\d{7,15}\b|\(\d{3}\)\s?\d{3}[-.\s]\d{4}\b|\b\d{3}[-.]\d{3}[-.]\d{4}\b")
RecordFactory = Callable[..., logging.LogRecord]


def redact(text: str) -> str:
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, exception and stack text redacted (exception kept as text only)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed format string: keep what can be shown, redacted
        message = f"{record.msg!s} {record.args!r}"
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class _RedactingFactory:
    """Wraps the current log-record factory; recognisable so it is installed once."""

    def __init__(self, inner: RecordFactory) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(self.inner(*args, **kwargs))


class RedactingFilter(logging.Filter):
    """For a handler of one's own (tests, tools); the app relies on the record factory below."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Redact every record from now on, for every logger and every handler (present or added later)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(current))


def installed() -> bool:
    return isinstance(logging.getLogRecordFactory(), _RedactingFactory)
