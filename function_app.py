"""The Tillbridge Functions app: registers the blueprints in functions/ and nothing else."""

import azure.functions as func

from functions import crm, ops, timers, webhook, worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(webhook.bp)
app.register_functions(worker.bp)
app.register_functions(timers.bp)
app.register_functions(ops.bp)
app.register_functions(crm.bp)
