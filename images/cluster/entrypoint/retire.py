"""Graceful Dask retirement: the scheduler moves this worker's data elsewhere first."""
from __future__ import annotations

from settings import Settings
from supervisor import log


def retire_worker(s: Settings) -> None:
    """Ask the scheduler to retire us by name; bounded, and a no-op if it is gone."""
    from distributed import Client

    with Client(s.dask_address, timeout=5, set_as_default=False) as client:
        result = client.retire_workers(names=[s.worker_name], close_workers=True)
    log(f'retired Dask worker {s.worker_name}: {len(result)} worker(s) left the scheduler')
