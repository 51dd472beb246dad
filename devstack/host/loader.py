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

_SETTING = re.compile(r"%([^%]+)%")


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
    """Expand %Setting% as the host does; a missing setting is an error, not an empty string."""
    values = env if env is not None else dict(os.environ)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"app setting {name!r} used in a trigger is not defined")
        return values[name]

    return _SETTING.sub(replace, text)


def trigger_attr(function: Any, name: str) -> Any:
    return getattr(function.get_trigger(), name, None)
