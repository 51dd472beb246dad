"""python -m devstack.dataverse_emulator --port 0 --token T [--extra-token T2 …] [--prefix tb] [--latency-ms 0]
[--realistic-cost]"""

from __future__ import annotations

import argparse

from devstack.dataverse_emulator.app import create_app
from devstack.dataverse_emulator.server import Emulator, Limits
from devstack.serve import serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(description="Dataverse Web API emulator (loopback only)")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--token", required=True)
    parser.add_argument("--extra-token", action="append", default=[], help="another application user (own budget)")
    parser.add_argument("--realistic-cost", action="store_true", help="charge and spend published execution times")
    parser.add_argument("--prefix", default="tb")
    parser.add_argument("--bare-schema", action="store_true", help="contact without Tillbridge's columns and keys")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--requests-per-window", type=int, default=6000)
    parser.add_argument("--window-seconds", type=float, default=300.0)
    parser.add_argument("--max-concurrency", type=int, default=52)
    args = parser.parse_args()
    base = Limits.realistic() if args.realistic_cost else Limits()
    limits = Limits(
        request_cost_ms=base.request_cost_ms,
        record_cost_ms=base.record_cost_ms,
        requests_per_window=args.requests_per_window,
        window_seconds=args.window_seconds,
        max_concurrency=args.max_concurrency,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
    )
    serve_forever(
        create_app(
            Emulator(
                token=args.token,
                prefix=args.prefix,
                bare=args.bare_schema,
                limits=limits,
                extra_tokens=args.extra_token,
            )
        ),
        "127.0.0.1",
        args.port,
        "dataverse",
    )


if __name__ == "__main__":
    main()
