"""Core types and pure helpers: errors, boundary models, ports, money, normalisation (no I/O, no adapters)."""
