"""Progress of long Dask computations, logged at regular intervals.

A stage that streams a whole grid through Dask (stack, map) can run for
many minutes on a full scene. `log_progress` is a Dask callback that counts
the chunks written so far and logs, at most every `every_s` seconds, how many
are done, the rate in megapixels per second and an estimate of the time
left. It goes to the stage's logger, so the rule's log file shows it.

Chunks are counted by their key name: the tasks that store a chunk, which
both `dask.array.store` and `dask.array.to_zarr` name ``store-map-...``.

Dask callbacks see the local schedulers (threads, processes, synchronous)
only; under a ``dask.distributed`` client this logs nothing and the
cluster's dashboard shows progress.
# TODO: log progress under dask.distributed too (distributed.progress or a
# scheduler plugin); the `dask` config setting can route stages there.
"""

from __future__ import annotations

import logging
import time

from dask.callbacks import Callback

log = logging.getLogger(__name__)

STORE_PREFIX = "store-map"
"""Key name prefix of the tasks that write one chunk each."""


def _key_name(key) -> str:
    name = key[0] if isinstance(key, tuple) else key
    return name if isinstance(name, str) else str(name)


class ProgressLog(Callback):
    """Dask callback that logs chunks done / total and Mpx/s.

    Parameters
    ----------
    logger : logging.Logger
        Where the lines go (the stage's module logger).
    total_chunks : int, optional
        Chunks the computation writes. Default None: the tasks whose name
        starts with `key_prefix` in the graph of the first computation.
    pixels_per_chunk : float, optional
        Mean pixels (y * x) in one chunk, for the rate. Default None: no
        rate, chunks only.
    every_s : float, default 10
        Least number of seconds between two lines.
    what : str, default "chunks"
        Name of the stage or object in the lines ("map", "sentinel2
        stack").
    key_prefix : str, default "store-map"
        Tasks with names starting with this are counted as chunks done.
    """

    def __init__(self, logger: logging.Logger, total_chunks: int | None = None,
                 pixels_per_chunk: float | None = None, every_s: float = 10.0,
                 what: str = "chunks", key_prefix: str = STORE_PREFIX):
        super().__init__()
        self.logger = logger
        self.total = total_chunks
        self.pixels_per_chunk = pixels_per_chunk
        self.every_s = float(every_s)
        self.what = what
        self.key_prefix = key_prefix
        self.done = 0
        self.lines = 0
        self._t0 = None
        self._last = None

    # -- dask hooks --------------------------------------------------------

    def _start(self, dsk):
        if self._t0 is None:
            self._t0 = self._last = time.perf_counter()
        if self.total is None:
            self.total = sum(1 for key in dsk
                             if _key_name(key).startswith(self.key_prefix))

    def _posttask(self, key, result, dsk, state, worker_id):
        if not _key_name(key).startswith(self.key_prefix):
            return
        self.done += 1
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self._log(now)

    def _finish(self, dsk, state, errored):
        if not errored and self._t0 is not None:
            self._log(time.perf_counter(), final=True)

    # -- lines -------------------------------------------------------------

    def rate_mpx_s(self, now: float | None = None) -> float | None:
        """Megapixels per second so far, or None without pixels_per_chunk."""
        if self.pixels_per_chunk is None or self._t0 is None:
            return None
        elapsed = (now or time.perf_counter()) - self._t0
        return self.done * self.pixels_per_chunk / 1e6 / max(elapsed, 1e-9)

    def _log(self, now: float, final: bool = False) -> None:
        elapsed = now - self._t0
        total = self.total or 0
        parts = [f"{self.what}: {self.done}/{total} chunks"]
        if total:
            parts[0] += f" ({100 * self.done / total:.0f} %)"
        rate = self.rate_mpx_s(now)
        if rate is not None:
            parts.append(f"{rate:.2f} Mpx/s")
        parts.append(f"{elapsed:.0f} s elapsed")
        if not final and total and 0 < self.done < total:
            left = elapsed * (total - self.done) / self.done
            parts.append(f"about {left:.0f} s left")
        if final:
            parts[0] = "done, " + parts[0]
        self.logger.info(", ".join(parts))
        self.lines += 1


def log_progress(logger: logging.Logger, total_chunks: int | None = None,
                 pixels_per_chunk: float | None = None,
                 every_s: float = 10.0, what: str = "chunks",
                 key_prefix: str = STORE_PREFIX) -> ProgressLog:
    """Context manager that logs the progress of the Dask computations run
    inside it; see `ProgressLog` for the parameters.

    Examples
    --------
    >>> with log_progress(log, labels.npartitions,
    ...                   labels.size / labels.npartitions, what="map"):
    ...     da.store(labels, target, lock=False)
    """
    return ProgressLog(logger, total_chunks, pixels_per_chunk, every_s, what,
                       key_prefix)


def for_array(logger: logging.Logger, array, every_s: float = 10.0,
              what: str = "chunks") -> ProgressLog:
    """`log_progress` sized from a Dask array: one chunk per block, and
    the pixels of the last two axes (y, x) shared among the blocks, so that
    the rate counts grid pixels whatever the chunking along bands."""
    total = 1
    for n in array.numblocks:
        total *= n
    pixels = array.shape[-2] * array.shape[-1]
    return log_progress(logger, total, pixels / max(total, 1), every_s, what)
