"""The optional dependencies of the export formats (onnx, onnxscript, onnxruntime).

They are imported only inside the functions that use them, so `dermkd` installs and runs
without them; a format that needs one that is missing says how to get it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dermkd.errors import DermkdError

INSTALL_HINT = "pip install 'dermkd[export]'"


def require(module: str) -> ModuleType:
    """Import `module`, or raise a one-line DermkdError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DermkdError(f"{module.split('.')[0]} is not installed; it is needed for this export format: "
                          f"{INSTALL_HINT}") from None
