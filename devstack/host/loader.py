"""Find the app as the Python worker does: import the script, take its one FunctionRegister."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import FunctionRegister

from shared.config.settings import BINDING_DEFAULTS

_SETTING = re.compile(r"%([^%]+)%")


class HostSettingError(Exception):
    """A setting the host needs is missing: one line naming it (the host exits, no traceback)."""


def load_app(project_dir: Path) -> func.FunctionApp:
    script = os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    module = importlib.import_module(Path(script).stem)
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise ValueError(f"{script} must define exactly one FunctionApp, found {len(apps)}")
    app = apps[0]
    assert isinstance(app, func.FunctionApp)
    return app


def resolve(text: str, env: dict[str, str] | None = None) -> str:
    """Expand %Setting% as the host does, taking the app's own default for a binding setting that is not
    set (shared/config/settings.py BINDING_DEFAULTS); any other missing setting is an error."""
    values = env if env is not None else dict(os.environ)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name) or BINDING_DEFAULTS.get(name)
        if value is None:
            raise HostSettingError(f"app setting {name} (used in a trigger as %{name}%) is not defined")
        return value

    return _SETTING.sub(replace, text)


def trigger_attr(function: Any, name: str) -> Any:
    return getattr(function.get_trigger(), name, None)


def storage_connection(env: dict[str, str] | None = None) -> str:
    """The storage connection string queue triggers run on locally (Azurite), or one clear error."""
    values = env if env is not None else dict(os.environ)
    connection = values.get("AzureWebJobsStorage", "").strip()
    if not connection:
        raise HostSettingError(
            "app setting AzureWebJobsStorage is not defined (the local host runs queue triggers over "
            "Azure Storage queues: UseDevelopmentStorage=true or an Azurite connection string)"
        )
    return connection
