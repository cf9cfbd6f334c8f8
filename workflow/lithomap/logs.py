"""Logging of rule scripts into their rule's log file, and where Dask runs."""

from __future__ import annotations

import contextlib
import logging
import sys

import dask
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_scheduler(cfg: dict | None, threads: int):
    """Run the body on the Dask scheduler `cfg` asks for.

    ``{"scheduler": "threads"}`` (the default) uses `threads` threads of
    this process; ``"local_cluster"`` starts a `distributed.LocalCluster`
    of ``n_workers`` processes; ``"address"`` connects to the running
    scheduler at ``address``.
    """
    cfg = cfg or {}
    kind = cfg.get("scheduler", "threads")
    if kind == "threads":
        # Each Dask thread runs its own chunk; BLAS threads on top of them
        # would only compete for the same cores.
        with dask.config.set(scheduler="threads",
                             num_workers=max(1, threads)), \
                threadpool_limits(1 if threads > 1 else None):
            yield None
        return
    from distributed import Client, LocalCluster

    if kind == "local_cluster":
        with _spawn_without_main():
            cluster = LocalCluster(
                n_workers=cfg.get("n_workers", 2),
                threads_per_worker=cfg.get("threads_per_worker", 1),
                memory_limit=cfg.get("memory_limit", "2GiB"),
                dashboard_address=None, processes=True)
        with cluster, Client(cluster) as client:
            log.info("Dask local cluster: %d worker(s)",
                     len(cluster.workers))
            yield client
    else:
        with Client(cfg["address"]) as client:
            log.info("Dask scheduler at %s", cfg["address"])
            yield client


@contextlib.contextmanager
def _spawn_without_main():
    """Start worker processes fresh (spawn), without re-running __main__.

    Forked workers inherit the locks of the parent's threads (Blosc's, for
    one) and can hang; spawned ones re-import the main module, and a
    Snakemake rule script is a main module with no main guard. Hiding the
    script's file name while the workers start avoids both.
    """
    main = sys.modules.get("__main__")
    path = main.__dict__.pop("__file__", None) if main else None
    try:
        with dask.config.set({"distributed.worker.multiprocessing-method":
                              "spawn"}):
            yield
    finally:
        if path is not None:
            main.__file__ = path


@contextlib.contextmanager
def rule_script(snakemake):
    """Run a rule script's body with logging to its `log:` file and Dask on
    the configured scheduler (the rule's threads by default). An error is
    logged, then re-raised so that Snakemake reports the rule as failed."""
    log_path = snakemake.log[0] if snakemake.log else None
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    rule_log = logging.getLogger("lithomap.rule")
    rule_log.info("rule %s, wildcards %s, %d thread(s)", snakemake.rule,
                  dict(snakemake.wildcards), snakemake.threads)
    # Only the chunked stages name a Dask setting; the others (fitting
    # models) keep BLAS and OpenMP threads for themselves.
    dask_cfg = getattr(snakemake.params, "dask", None)
    try:
        if dask_cfg is None:
            yield rule_log
            return
        with dask_scheduler(dask_cfg, snakemake.threads):
            yield rule_log
    except ValueError as exc:
        rule_log.error("%s: %s", type(exc).__name__, exc)
        if type(exc).__module__.startswith("lithomap"):
            # Our own errors say what is wrong and how to fix it; a
            # traceback would only bury that line.
            raise SystemExit(1) from None
        raise
    except Exception as exc:
        rule_log.error("%s: %s", type(exc).__name__, exc)
        raise
