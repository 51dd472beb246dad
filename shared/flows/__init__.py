"""Flows: one module per Square object kind, each a pure mapping plus an orchestration over the ports."""
