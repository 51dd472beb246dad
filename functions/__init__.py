"""Thin Azure Functions triggers: decode the binding, one call into shared/, respond or raise."""
