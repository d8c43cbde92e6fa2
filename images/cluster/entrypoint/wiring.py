"""The files and environment that make `Client()`, `ipyparallel.Client()` and
`SparkSession.builder.getOrCreate()` find this cluster with no arguments.

Everything lives under CLUSTER_RUNTIME_DIR, shared by the scheduler and (locally)
the workers: the IPython profile with the controller's connection files (with
CLUSTER_IPP_KEY each side makes its own instead, see ipp.py), Spark's
conf dir, Jupyter's config (which holds the token, so it is not in any environment).
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys

from ipp import CLIENT_FILE, ENGINE_FILE, write_controller_files
from lab import lab_app_config, write_lab_settings
from settings import DASHBOARD_PATH, Settings

# Secrets read from the environment once; children (and so kernels) never see them.
_SECRETS = ('CLUSTER_JUPYTER_TOKEN', 'CLUSTER_IPP_KEY', 'CLUSTER_SPARK_SECRET')


def _wildcard(host: str) -> bool:
    return host in ('0.0.0.0', '::', '')


def paths(s: Settings) -> dict[str, str]:
    """Where each piece of runtime state lives."""
    ipython = os.path.join(s.runtime_dir, 'ipython')
    return {
        'ipython': ipython,
        'profile': os.path.join(ipython, 'profile_default'),
        'security': os.path.join(ipython, 'profile_default', 'security'),
        'spark_conf': os.path.join(s.runtime_dir, 'spark-conf'),
        'jupyter_config': os.path.join(s.runtime_dir, 'jupyter_server_config.json'),
        'lab_settings': os.path.join(s.runtime_dir, 'lab-settings'),
        'jupyter_runtime': os.path.join(s.runtime_dir, 'jupyter-runtime'),
        'worker_dir': os.path.join(s.runtime_dir, 'workers', s.worker_name),
    }


def spark_home() -> str | None:
    """The pyspark package ships Spark itself (jars and bin/spark-class)."""
    spec = importlib.util.find_spec('pyspark')
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def advertise_host(s: Settings) -> str:
    """The address other machines reach this one's services at."""
    return socket.gethostname() if _wildcard(s.bind) else s.bind


def local_host(s: Settings) -> str:
    """The address this machine's own services are reached at."""
    return '127.0.0.1' if _wildcard(s.bind) else s.bind


def child_env(s: Settings, base: dict[str, str]) -> dict[str, str]:
    """Environment of every child; Jupyter hands it on to kernels."""
    p = paths(s)
    env = {k: v for k, v in base.items() if k not in _SECRETS}
    env.update({
        'IPYTHONDIR': p['ipython'],
        'JUPYTER_RUNTIME_DIR': p['jupyter_runtime'],
        'SPARK_CONF_DIR': p['spark_conf'],
        'PYSPARK_PYTHON': sys.executable,
        'PYSPARK_DRIVER_PYTHON': sys.executable,
        'DASK_SCHEDULER_ADDRESS': s.dask_address,
        # The dashboard is only reachable through Jupyter's authenticated proxy.
        'DASK_DISTRIBUTED__DASHBOARD__LINK': f'{s.base_url}{DASHBOARD_PATH}status',
        'PYTHONUNBUFFERED': '1',
    })
    env.update(dask_tls_env(s))
    home = spark_home()
    if home:
        env['SPARK_HOME'] = home
    # A taken port must fail the master (and the launch, which then picks others) instead of
    # the master quietly moving to the next port, where its workers would never look.
    env['SPARK_MASTER_OPTS'] = '-Dspark.port.maxRetries=0'
    if not _wildcard(s.bind):
        # Spark's web UIs and executors bind SPARK_LOCAL_IP, else every interface.
        env['SPARK_LOCAL_IP'] = s.bind
    return env


def dask_tls_env(s: Settings) -> dict[str, str]:
    """Dask's own configuration, so every Security() (scheduler, workers, Client()) uses the cluster's CA."""
    if not s.tls_ca:
        return {}
    env = {
        'DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION': 'True',
        'DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME': 'tls',
        'DASK_DISTRIBUTED__COMM__TLS__CA_FILE': s.tls_ca,
    }
    for role in ('SCHEDULER', 'WORKER', 'CLIENT'):
        env[f'DASK_DISTRIBUTED__COMM__TLS__{role}__CERT'] = s.tls_cert
        env[f'DASK_DISTRIBUTED__COMM__TLS__{role}__KEY'] = s.tls_key
    return env


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


def write_scheduler_files(s: Settings) -> None:
    """Jupyter, IPython controller and Spark driver configuration for this start."""
    p = paths(s)
    for name in (ENGINE_FILE, CLIENT_FILE):
        # A stale file from an earlier run would send engines and clients nowhere.
        try:
            os.remove(os.path.join(p['security'], name))
        except FileNotFoundError:
            pass
    os.makedirs(p['jupyter_runtime'], exist_ok=True)
    jupyter = {
        'ServerApp': {
            'ip': s.bind,
            'port': s.jupyter_port,
            'port_retries': 0,
            'base_url': s.base_url,
            'root_dir': s.workspace,
            'open_browser': False,
            # Behind the hub's proxy the Host header is the hub's; the token guards access.
            'allow_remote_access': True,
            'default_url': '/lab',
            # Jupyter refuses root unless told: allowed only where root really is the account in
            # use (a local hub run as root); the image runs as uid 1000.
            'allow_root': os.geteuid() == 0,
            'jpserver_extensions': {
                'jupyter_server_proxy': True,
                'dask_labextension': True,
                # Its "start a cluster" tab would compete with the cluster we run.
                'ipyparallel': False,
                # No language servers are installed: skip the import cost.
                'jupyter_lsp': False,
            },
        },
        'IdentityProvider': {'token': s.jupyter_token},
        # The Dask dashboard at a path that is the same at every start, whatever its port: the Dask
        # panel keeps its URL in the student's saved layout, which outlives the ports of one start.
        'ServerProxy': {'servers': {DASHBOARD_PATH.strip('/'): {'port': s.dashboard_port, 'launcher_entry': {'enabled': False}}}},
        'LabApp': lab_app_config(s, p['lab_settings']),
    }
    _write(p['jupyter_config'], json.dumps(jupyter, indent=2), 0o600)
    write_lab_settings(s, p['lab_settings'])
    controller: dict = {'ip': s.bind, 'location': s.scheduler_host, 'use_threads': True}
    if s.ipp_key:
        # Workers elsewhere compute the same engine file from the same variables.
        controller.update(write_controller_files(s, p['security']))
    elif s.ipp_ports:
        controller['ports'] = list(s.ipp_ports)
    _write(os.path.join(p['profile'], 'ipcontroller_config.json'), json.dumps({'IPController': controller}, indent=2))
    driver_host = advertise_host(s)
    spark = [
        f'spark.master spark://{s.scheduler_host}:{s.spark_port}',
        f'spark.driver.host {driver_host}',
        f'spark.driver.bindAddress {s.bind}',
        # CLUSTER_MEMORY and CLUSTER_THREADS are a worker's: its one executor gets its cores and a
        # heap that leaves room for Python and the JVM's overhead (settings.spark_executor_mb).
        f'spark.executor.memory {s.spark_executor_mb}m',
        f'spark.executor.cores {s.threads}',
        'spark.ui.showConsoleProgress false',
        # The master's REST submission server would listen on a fixed port (6066) with no auth.
        'spark.master.rest.enabled false',
    ]
    if s.spark_secret:
        # The master, the workers and the driver read this file: each RPC must prove the secret.
        spark += ['spark.authenticate true', f'spark.authenticate.secret {s.spark_secret}']
    _write(os.path.join(p['spark_conf'], 'spark-defaults.conf'), '\n'.join(spark) + '\n', 0o600)
