"""Adapters: the only modules that talk to HTTP services, Azure SDKs and the clock."""
