"""One map over configurations: in this process, in local worker processes, or on a Dask cluster.

Every sweep of every experiment goes through :meth:`Mapper.map`, which takes a picklable
top-level function ``fn(config: dict) -> dict`` and a list of configurations and returns the
results in the order of the configurations, each with the seconds it took under ``"_seconds"`` (wall)
and ``"_cpu_seconds"`` (CPU time of the process that ran it: on a shared machine the measure of cost).

* ``Mapper(workers=0)``: serial, in this process, with one torch thread (what the quick tests use);
* ``Mapper()``: a pool of local processes (``forkserver``/``spawn``; one torch thread each), the
  default, created on first use and reused by every experiment of one ``hjsym experiment`` run;
* ``Mapper(scheduler="tcp://host:8786")``: a Dask ``distributed`` cluster (the optional extra
  ``hjsym[dask]``).
"""

from __future__ import annotations

import os
import re
import socket
import time

from .._errors import InputError
from .._workers import process_pool

__all__ = ["Mapper"]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _call(fn, config: dict) -> dict:
    """Run ``fn(config)`` and record its wall and CPU time (used by every backend)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(config)
    out = dict(out)
    out["_seconds"] = time.perf_counter() - t0
    out["_cpu_seconds"] = time.process_time() - c0
    return out


def _call_threads_one(fn, config: dict) -> dict:
    _init_worker()
    return _call(fn, config)


#: Seconds a scheduler address may take to accept a connection.
PROBE_TIMEOUT = 2.0
_ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})/?")


def _dask_client():
    """``distributed.Client``, or an :class:`~hjsym.InputError` saying how to install it."""
    try:
        from distributed import Client
    except Exception as exc:  # noqa: BLE001 - missing, or a broken install (any error while importing it)
        raise InputError(f"--scheduler needs dask.distributed, which cannot be imported ({type(exc).__name__}: {exc})",
                         "pip install 'hjsym[dask]' (or drop --scheduler to use local processes)") from None
    return Client


def probe_scheduler(address: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Check that ``address`` is ``[tcp://]HOST:PORT``, that the port accepts a connection within ``timeout`` seconds (a
    refused connection fails at once, not after Dask's retries) and that Dask is installed."""
    m = _ADDRESS.fullmatch(str(address).strip())
    if m is None or not 0 < int(m["port"]) < 65536 or (m["scheme"] or "tcp") not in ("tcp", "tls"):
        raise InputError(f"--scheduler {address!r} is not a scheduler address", "write tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786")
    host, port = m["host"].strip("[]"), int(m["port"])
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise InputError(f"--scheduler {address!r}: unknown host {host!r} ({exc.strerror})", "check the host name") from None
    except (socket.timeout, TimeoutError):
        raise InputError(f"the Dask scheduler at {address} did not answer within {timeout:g} s",
                         "start one (dask scheduler) or check the address and the firewall") from None
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc.strerror or exc}",
                         "start one (dask scheduler --port PORT) or check the address, e.g. tcp://127.0.0.1:8786") from None
    _dask_client()  # after the connection: a refused one fails without the seconds importing Dask takes


class Mapper:
    """The single map over configurations used by every experiment.

    Args:
        workers: number of local worker processes; ``0`` runs serially in this process;
            ``None`` means ``os.cpu_count()``.
        scheduler: address of a Dask scheduler (``tcp://HOST:PORT``); overrides ``workers``.
        progress: show a progress bar per sweep.
        connect_timeout: seconds to wait for the Dask scheduler.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, progress: bool = False, connect_timeout: float = 10.0):
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise InputError(f"workers must be a non-negative integer, got {workers!r}", "pass e.g. --workers 2 (0: no subprocesses)")
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        if scheduler:
            probe_scheduler(scheduler)  # a malformed, unknown or refused address fails now (within seconds), before any work
        self.scheduler = scheduler
        self.progress = progress
        self.connect_timeout = connect_timeout
        self._pool = None
        self._client = None
        self.remote_cpu_seconds = 0.0  # CPU time of configurations run in other processes (workers, Dask)

    def cpu_seconds(self) -> float:
        """CPU time spent so far by this process and by the configurations it sent to other processes."""
        return time.process_time() + self.remote_cpu_seconds

    @property
    def backend(self) -> str:
        if self.scheduler:
            return f"dask ({self.scheduler})"
        return "serial" if self.workers == 0 else f"local processes ({self.workers})"

    # ---------------------------------------------------------------- backends
    def _dask(self):
        if self._client is None:
            Client = _dask_client()
            try:
                self._client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}",
                                 "start one (dask scheduler) or check the address, e.g. tcp://127.0.0.1:8786") from None
        return self._client

    def _local(self):
        if self._pool is None:  # forkserver or spawn; the workers die with this process, even on kill -9
            self._pool = process_pool(self.workers, initializer=_init_worker)
        return self._pool

    def map(self, fn, configs: list[dict], desc: str = "configurations") -> list[dict]:
        """``[fn(c) for c in configs]`` on the chosen backend, in order; each result gains ``_seconds`` and ``_cpu_seconds``."""
        from tqdm.auto import tqdm

        configs = list(configs)
        bar = tqdm(total=len(configs), desc=desc, disable=not self.progress, leave=False)
        try:
            if self.scheduler:
                from distributed import as_completed

                client = self._dask()
                futures = client.map(_call_threads_one, [fn] * len(configs), configs, pure=False)
                for _ in as_completed(futures):
                    bar.update()
                return self._count_remote(client.gather(futures))
            if self.workers == 0 or len(configs) == 1:
                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # like a worker: small batched ops lose more to thread hand-offs than they gain
                try:
                    out = []
                    for c in configs:
                        out.append(_call(fn, c))
                        bar.update()
                    return out
                finally:
                    torch.set_num_threads(threads)
            from concurrent.futures import as_completed as done

            pool = self._local()
            futures = [pool.submit(_call, fn, c) for c in configs]
            for _ in done(futures):
                bar.update()
            return self._count_remote([f.result() for f in futures])
        finally:
            bar.close()

    def _count_remote(self, results: list[dict]) -> list[dict]:
        self.remote_cpu_seconds += sum(r.get("_cpu_seconds", 0.0) for r in results)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
