"""A child process that must not outlive its parent (the server that started it).

A trainer whose server was killed (SIGKILL, a crash) would otherwise go on
writing into the job's directory while the restarted server runs a second
trainer for the same job. On Linux the kernel kills us when the parent dies
(prctl PR_SET_PDEATHSIG); everywhere, a daemon thread also exits the process
when the parent process id changes (we were re-parented), which also covers a
parent that died before the prctl call.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(poll_s: float = 1.0) -> None:
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass  # the polling below still applies

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(poll_s)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="lifeline", daemon=True).start()
