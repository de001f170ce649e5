"""How a labctl process ends: what the interpreter's exit does for Python code, without its teardown.

Other threads are waited for, `atexit` handlers run and the standard streams are flushed, then the process
leaves with `os._exit`, skipping the teardown of every module and the C++ static destructors. pyarrow's
thread pools, started by reading the compact records, could abort the process there under load ("terminate
called without an active exception", exit -6 after the right message); and the teardown's last collector
passes would walk all of numpy's and pyarrow's objects for garbage the exiting process drops anyway. Under a
profiler, a tracer or a debugger it exits the ordinary way, so that they can write their results.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def leave(code: int) -> NoReturn:
    """End the process with exit status `code` (see the module doc)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler, coverage or a debugger writes its results in the ordinary teardown
    threading._shutdown()  # noqa: SLF001 - what Py_FinalizeEx does first: thread atexits, join the others
    atexit._run_exitfuncs()  # noqa: SLF001 - logging.shutdown and the other registered handlers
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
