"""The event pipeline: webhook ingress, the flow registry, the worker, the version gate, the ledger, reconcile."""
