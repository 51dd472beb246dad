"""A local Functions host: runs the same FunctionApp (`app.get_functions()`) without Core Tools.

HTTP triggers on http://127.0.0.1:7071/api/<route>, Service Bus queue triggers over Azurite storage
queues (visibility timeout ≈ lock, dequeue count ≈ delivery count, `<queue>-poison` ≈ dead-letter),
timer triggers on their NCRONTAB schedules; settings from local.settings.json, overridden by the
environment, with `%Setting%` expressions resolved.
"""
