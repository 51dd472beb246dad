"""Bulk path: the backfill of Square history and the batched writes of the worker under load."""
