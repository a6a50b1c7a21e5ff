"""User-facing errors: one clear line, non-zero exit, no traceback."""


class UserError(Exception):
    """Bad input from the user (config, data, environment). Printed as one line; exit code 2."""


class MissingDependency(UserError):
    """An optional library is not installed; the message names the pip package to install."""

    def __init__(self, module: str, pip_name: str, purpose: str):
        super().__init__(f"{purpose} needs the Python package '{pip_name}' (import {module} failed): "
                         f"pip install {pip_name}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def require(module: str, pip_name: str, purpose: str):
    """Import an optional heavy module, turning ImportError into a MissingDependency."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(module, pip_name, purpose) from exc
