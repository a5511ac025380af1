"""Worker processes that die with their parent.

``hjsym report`` computes pages and ``hjsym experiment`` runs sweeps in pools of worker
processes (:func:`process_pool`). A worker must not outlive the command that started it: killed
with ``kill -9``, the parent cannot clean up, so every worker arranges its own end when it starts
(:func:`die_with_parent`): on Linux the kernel sends it ``SIGKILL`` when its parent exits
(``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog thread ends it within half a second of
its parent's death (the parent id changes when a process is re-parented). A ``forkserver`` worker
follows the process that made the pool instead (on Linux through a pidfd, so at once): its own
parent, the fork server, lives as long as any worker does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "process_pool", "WATCH_INTERVAL"]

#: Seconds between the watchdog's checks of the parent process.
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def die_with_parent(owner: int | None = None) -> None:
    """End this process when its parent ends, or when ``owner`` does (call it first in a worker process).

    ``owner`` is the process that made the pool: a ``forkserver`` worker's parent is the fork
    server, which itself stays alive as long as any worker holds its pipe, so a worker follows the
    pool's owner, not its parent.
    """
    parent = os.getppid()
    owner = parent if owner is None else owner
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
    if os.getppid() != parent or not _alive(owner):  # died before the signal was armed
        os._exit(1)

    def watch():
        try:  # Linux: the kernel says when the owner exits
            import select

            fd = os.pidfd_open(owner)
            poller = select.poll()
            poller.register(fd, select.POLLIN)
        except (AttributeError, OSError):
            poller = None
        while True:
            if poller is not None:
                if poller.poll(int(WATCH_INTERVAL * 1000)):
                    os._exit(1)
            else:
                time.sleep(WATCH_INTERVAL)
            if os.getppid() != parent or not _alive(owner):
                os._exit(1)

    threading.Thread(target=watch, name="hjsym-parent-watchdog", daemon=True).start()


def _start(owner, initializer, initargs) -> None:
    die_with_parent(owner)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, method: str | None = None, initializer=None, initargs=()):
    """A ``ProcessPoolExecutor`` of ``workers`` processes (``forkserver`` where available, else ``spawn``; or ``method``)
    whose workers die with this process; ``initializer(*initargs)`` then runs in each."""
    from concurrent.futures import ProcessPoolExecutor

    if method is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_start,
                               initargs=(os.getpid(), initializer, tuple(initargs)))
