"""python -m devstack.host [--port 7071] [--project .]: the local Functions host, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from devstack.host.loader import HostSettingError
from devstack.host.runner import serve


def main() -> None:
    parser = argparse.ArgumentParser(description="Run function_app.py locally (HTTP, queue and timer triggers)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--settings-file", type=Path, default=None, help="default: local.settings.json in the project (if present)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(args.project.resolve(), args.host, args.port, args.settings_file))
    except HostSettingError as error:
        print(f"tillbridge local host: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
