"""runctl: move code and data between a laptop, S3 and GPU machines, fast and safely.

The public API is lazy so that ``import runctl`` (and ``runctl --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import (
        download,
        download_async,
        list_async,
        list_objects,
        sync,
        sync_async,
        upload,
        upload_async,
    )
    from .background import PendingUpload, upload_in_background, wait_for_uploads
    from .errors import RunctlError
    from .results import ListResult, TransferResult
    from .settings import Settings

__all__ = [
    "ListResult",
    "PendingUpload",
    "RunctlError",
    "Settings",
    "TransferResult",
    "download",
    "download_async",
    "list_async",
    "list_objects",
    "sync",
    "sync_async",
    "upload",
    "upload_async",
    "upload_in_background",
    "wait_for_uploads",
]

_HOMES = {
    "RunctlError": "errors",
    "Settings": "settings",
    "TransferResult": "results",
    "ListResult": "results",
    "PendingUpload": "background",
    "upload_in_background": "background",
    "wait_for_uploads": "background",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(name)
    import importlib

    module = importlib.import_module(f".{_HOMES.get(name, 'api')}", __name__)
    return getattr(module, name)
