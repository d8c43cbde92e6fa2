"""The command lines of each mode: pure functions of the settings."""
from __future__ import annotations

import os
import sys
import sysconfig

from settings import Settings
from wiring import advertise_host, paths, spark_home


# How long engines wait for the controller (its connection file, or with CLUSTER_IPP_KEY its
# answer); longer than the Dask worker's --death-timeout, so a missing scheduler ends the
# worker through Dask first.
CONTROLLER_WAIT_S = 120


def _bin(name: str) -> str:
    """Console scripts of the Python we run under: beside it (a venv, python:slim) or where
    pip installs them for it (Debian's own python3 puts them in /usr/local/bin)."""
    for directory in (os.path.dirname(sys.executable), sysconfig.get_path('scripts')):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return os.path.join(os.path.dirname(sys.executable), name)


def _spark_class() -> str:
    home = spark_home()
    if home is None:
        raise RuntimeError('pyspark is not installed')
    return os.path.join(home, 'bin', 'spark-class')


def _host_args(s: Settings) -> list[str]:
    """Dask's --host, unless we listen everywhere and let Dask pick the contact address."""
    return [] if s.bind in ('0.0.0.0', '::') else ['--host', s.bind]


def scheduler_commands(s: Settings) -> list[tuple[str, list[str]]]:
    """(name, argv) of everything the scheduler runs."""
    p = paths(s)
    commands = [
        ('jupyter', [_bin('jupyter'), 'lab', f'--config={p["jupyter_config"]}']),
        ('dask-scheduler', [
            _bin('dask'), 'scheduler', *_host_args(s), '--port', str(s.dask_port), '--protocol', s.dask_scheme,
            # The dashboard is for Jupyter's proxy only, so it never leaves loopback.
            '--dashboard-address', f'127.0.0.1:{s.dashboard_port}',
        ]),
        ('ipcontroller', [_bin('ipcontroller'), f'--profile-dir={p["profile"]}', '--log-level=INFO']),
    ]
    if s.spark == 'on':
        commands.append(('spark-master', [
            _spark_class(), 'org.apache.spark.deploy.master.Master',
            '--host', advertise_host(s),
            '--port', str(s.spark_port), '--webui-port', str(s.spark_ui_port),
        ]))
    return commands


def worker_commands(s: Settings) -> list[tuple[str, list[str]]]:
    """(name, argv) of everything one worker runs, pointed at the scheduler."""
    p = paths(s)
    commands = [
        ('dask-worker', [
            _bin('dask'), 'worker', s.dask_address,
            '--name', s.worker_name, '--nthreads', str(s.threads), '--nworkers', '1',
            '--memory-limit', s.memory, *_host_args(s),
            # Its HTTP server (health, metrics) would otherwise listen on every interface.
            '--no-dashboard', '--dashboard-address', '127.0.0.1:0',
            '--local-directory', os.path.join(p['worker_dir'], 'dask'),
            # A worker whose scheduler is gone for good ends, and takes its group with it.
            '--death-timeout', '60',
        ]),
    ]
    engine_args = [f'--profile-dir={p["profile"]}', f'--IPEngine.wait_for_url_file={CONTROLLER_WAIT_S}', '--log-level=INFO']
    if s.ipp_key:
        # The file is there before the controller is (it comes from the environment): wait for
        # the controller's answer instead of giving up after ipengine's default 5 seconds.
        engine_args.append(f'--IPEngine.timeout={CONTROLLER_WAIT_S}')
    for i in range(s.engines):
        commands.append((f'ipengine-{i}', [_bin('ipengine'), *engine_args]))
    if s.spark == 'on':
        commands.append(('spark-worker', [
            _spark_class(), 'org.apache.spark.deploy.worker.Worker',
            f'spark://{s.scheduler_host}:{s.spark_port}',
            '--host', advertise_host(s),
            # It offers what its one executor takes (spark.executor.memory, from the same
            # CLUSTER_MEMORY), not the whole worker: the rest is Python's and the JVMs' headroom.
            '--cores', str(s.threads), '--memory', f'{s.spark_executor_mb}M',
            '--webui-port', '0', '--work-dir', os.path.join(p['worker_dir'], 'spark'),
        ]))
    return commands
