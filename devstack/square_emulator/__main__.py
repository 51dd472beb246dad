"""python -m devstack.square_emulator --port 0 --token T --signature-key K --notification-url U --target-url U"""

from __future__ import annotations

import argparse

from devstack.serve import serve_forever
from devstack.square_emulator.app import create_app
from devstack.square_emulator.delivery import DeliveryConfig


def main() -> None:
    parser = argparse.ArgumentParser(description="Square API emulator (loopback only)")
    parser.add_argument("--port", type=int, default=7073)
    parser.add_argument("--token", required=True)
    parser.add_argument("--signature-key", required=True)
    parser.add_argument("--notification-url", required=True, help="the URL the subscription signs with")
    parser.add_argument("--target-url", default="", help="where webhooks are POSTed (defaults to the notification URL)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    delivery = DeliveryConfig(
        target_url=args.target_url or args.notification_url,
        signature_key=args.signature_key,
        notification_url=args.notification_url,
        seed=args.seed,
    )
    serve_forever(create_app(args.token, delivery, args.seed), "127.0.0.1", args.port, "square")


if __name__ == "__main__":
    main()
