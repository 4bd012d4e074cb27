"""A client machine that cannot see the tracking server's disk, imitated in one process.

Python imports `sitecustomize` at start-up from PYTHONPATH, so every process started with this
folder on it (the search's workers, a model-loading client) installs the audit hook below; a test
imports it to guard its own process too. While AVEMO_NO_ACCESS names a folder, any file operation
Python audits (open, listdir, mkdir, rename, remove, copy) on a path inside it raises
PermissionError: a client that reaches the server's artifact folder instead of going through
HTTP fails loudly. Cheap when unset: one environment look-up per audited file operation.
"""

import os
import sys

GUARDED = ("open", "os.", "shutil.")


def _inside(path, root: str) -> bool:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False  # file descriptors, flags, modes
    path = os.path.abspath(os.fsdecode(path))
    return path == root or path.startswith(root + os.sep)


def _guard(event: str, args: tuple) -> None:
    if not event.startswith(GUARDED):
        return
    root = os.environ.get("AVEMO_NO_ACCESS")
    if root and any(_inside(a, root) for a in args):
        raise PermissionError(f"{event} {args[0]!r}: this client has no access to the tracking server's artifacts")


if not getattr(sys, "_avemo_no_access", False):
    sys._avemo_no_access = True  # one hook per process, however often this module is imported
    sys.addaudithook(_guard)
