"""Tillbridge core library: domain, ports, adapters and pipeline (no Azure Functions imports)."""
