"""`make serve`: start the whole local stack and keep it serving until Ctrl-C (for poking at it by hand)."""

from __future__ import annotations

import signal
import threading

from devstack.stack import PROJECT_DIR, Stack, StackOptions, free_port


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    port = 7071
    try:
        with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
            port = free_port()  # 7071 is taken (another host?): use a free one
    except OSError:
        pass
    options = StackOptions(
        host_port=port,
        dataverse_latency_ms=25,
        dataverse_jitter_ms=25,
        log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / "serve",
    )
    with Stack(options) as stack:
        urls = stack.urls
        print(
            f"""Tillbridge local stack is serving (Ctrl-C stops it; logs in artifacts/stack-logs/serve/)
  ops console        {urls["host"]}/api/console/   function key: {stack.env["LOCAL_FUNCTION_KEY"]}
  admin API          {urls["host"]}/api/ops/health (header x-functions-key); OpenAPI at /api/ops/openapi.json
  CLI                TILLBRIDGE_URL={urls["host"]} TILLBRIDGE_FUNCTION_KEY={stack.env["LOCAL_FUNCTION_KEY"]} .venv/bin/tillbridge status
  function host      {urls["host"]}/api/square/webhooks
  Square emulator    {urls["square"]}   e.g. curl -X POST {urls["square"]}/_control/customers -d '{{"given_name":"Ada","email_address":"ada@example.com"}}'
  Dataverse emulator {urls["dataverse"]}   e.g. curl {urls["dataverse"]}/_control/tables/contacts
  Azurite            {stack.env["AzureWebJobsStorage"].split("QueueEndpoint=")[1].split(";")[0]} (queues), tables and blobs beside it""",
            flush=True,
        )
        stop.wait()


if __name__ == "__main__":
    main()
