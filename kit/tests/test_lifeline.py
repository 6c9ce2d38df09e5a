"""mmrec.lifeline: a trainer started with --die-with-parent does not outlive the server that started it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A parent that starts a long-lived child (stdout not a pipe, so no broken pipe can end it) and prints the child's pid.
PARENT = r"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], cwd=sys.argv[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _child_after_parent_killed(child_code: str) -> int:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, child_code, KIT], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    time.sleep(0.5)  # the child is running its code
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return pid


def test_a_child_with_a_lifeline_dies_with_its_parent():
    pid = _child_after_parent_killed("from mmrec.lifeline import die_with_parent; die_with_parent(0.2); import time; time.sleep(60)")
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the child outlived its parent"


def test_without_it_the_child_would_outlive_its_parent():
    pid = _child_after_parent_killed("import time; time.sleep(60)")
    try:
        time.sleep(1.5)
        assert _alive(pid), "the control child should still be running"
    finally:
        os.kill(pid, signal.SIGKILL)
