"""User-facing errors: one clear line, non-zero exit, no traceback."""


class UserError(Exception):
    """Bad input from the user (config, data, environment). Printed as one line; exit code 2."""


class MissingDependency(UserError):
    """An optional library is not installed; the message names the pip package to install."""

    def __init__(self, module: str, pip_name: str, purpose: str):
        super().__init__(f"{purpose} needs the Python package '{pip_name}' (import {module} failed): "
                         f"pip install {pip_name}")


def first_line(exc: BaseException, root_cause: bool = False) -> str:
    """The first line of an exception's message (its type name when the message is empty).

    With `root_cause`, of the innermost `__cause__` instead, without ANSI colours, and after the
    `## Exception summary` heading that torch's exporter puts above the real message.
    """
    import re

    while root_cause and exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip() or type(exc).__name__
    summary = text.split("## Exception summary", 1)
    if len(summary) == 2 and summary[1].strip():
        text = summary[1].strip()
    return text.splitlines()[0][:300] if root_cause else text.splitlines()[0]


def require(module: str, pip_name: str, purpose: str):
    """Import an optional heavy module, turning ImportError into a MissingDependency."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(module, pip_name, purpose) from exc
