"""Logging of rule scripts into their rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys

import dask


@contextlib.contextmanager
def rule_script(snakemake):
    """Run a rule script's body with logging to its `log:` file and Dask
    limited to the rule's threads. An error is logged, then re-raised so
    that Snakemake reports the rule as failed."""
    log_path = snakemake.log[0] if snakemake.log else None
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    log = logging.getLogger("lithomap.rule")
    log.info("rule %s, wildcards %s, %d thread(s)", snakemake.rule,
             dict(snakemake.wildcards), snakemake.threads)
    try:
        with dask.config.set(scheduler="threads",
                             num_workers=max(1, snakemake.threads)):
            yield log
    except Exception as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        raise
