"""Run a tool so that it, and every process it starts, ends when ternforge does.

A tool (Verilator with its make and compilers, a simulator, Yosys) does not run as a plain
child: it runs under a small guard process that leads a process group of its own. The kernel
signals the guard when the ternforge process that started it dies, however it dies, even by
``SIGKILL`` (Linux's ``PR_SET_PDEATHSIG``), and the guard then kills its whole group: the
tool and every compiler it started. Ctrl-C and ``SIGTERM`` end the group the same way.

The guard is started as ``python -m ternforge.sim.guard <parent pid> <command...>``;
:func:`run` does it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

__all__ = ["command", "run"]

_PR_SET_PDEATHSIG = 1
_ENDING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def command(argv) -> list[str]:
    """``argv`` as a command that runs it under a guard of this process."""
    return [sys.executable, "-m", "ternforge.sim.guard", str(os.getpid()), *map(str, argv)]


def run(argv, *, cwd=None, env=None, stdout=None, stderr=None, text=False,
        capture_output=False) -> subprocess.CompletedProcess:
    """:func:`subprocess.run` of ``argv`` under a guard; if this process is interrupted
    (Ctrl-C) or fails while it waits, the tool's whole group is ended before the exception
    goes on."""
    if capture_output:
        stdout = stderr = subprocess.PIPE
    process = subprocess.Popen(command(argv), cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                               text=text, start_new_session=True)
    try:
        out, err = process.communicate()
    except BaseException:
        process.terminate()  # the guard ends its group, then itself
        process.wait()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _end_group(signum, frame):
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    parent, tool = int(argv[0]), argv[1:]
    for signum in _ENDING:
        signal.signal(signum, _end_group)
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        return 1
    status = subprocess.Popen(tool).wait()
    if status < 0:  # end as the tool did, so the caller sees the same signal
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
