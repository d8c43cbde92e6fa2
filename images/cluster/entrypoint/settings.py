"""Everything the entrypoint reads from its environment, parsed once.

Pure: `load(environ)` turns a mapping into `Settings`, so the rules can be tested
without starting anything. README.md lists every variable.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    bind: str
    scheduler_host: str
    jupyter_port: int
    jupyter_token: str
    base_url: str
    workspace: str
    runtime_dir: str
    dask_port: int
    dashboard_port: int
    ipp_ports: tuple[int, ...]  # empty: the controller picks random ports
    ipp_key: str  # empty: the controller makes its own key and files (shared runtime dir)
    spark: str  # 'on' or 'off' once resolved
    spark_port: int
    spark_ui_port: int
    threads: int
    memory: str
    memory_mb: int
    engines: int
    worker_name: str
    materials_git_url: str
    materials_dir: str
    stop_grace: float
    tls_ca: str  # empty: Dask without TLS
    tls_cert: str
    tls_key: str
    spark_secret: str  # empty: Spark without authentication
    umask: int | None

    @property
    def dask_scheme(self) -> str:
        return 'tls' if self.tls_ca else 'tcp'

    @property
    def dask_address(self) -> str:
        return f'{self.dask_scheme}://{self.scheduler_host}:{self.dask_port}'

    @property
    def spark_executor_mb(self) -> int:
        """Heap of the Spark executor on a worker of CLUSTER_MEMORY (see `spark_executor_mb`)."""
        return spark_executor_mb(self.memory_mb)


# The Dask dashboard under the student's Jupyter (its server proxy, authenticated): the same path
# at every start, unlike `proxy/{port}/`, so links saved in JupyterLab's layout keep working.
DASHBOARD_PATH = 'dask/'

# One worker runs one executor (its cores are the worker's). The executor's heap is what is
# left of the worker's memory after pyspark's Python workers, which run beside the JVM
# (a quarter), and the JVM's memory beyond its heap (metaspace, threads, direct buffers:
# Spark's own rule for that overhead, 10 % of the heap and at least 384 MiB). Spark refuses
# a heap under 450 MiB, so a smaller worker still gets 512 MiB.
SPARK_PYTHON_SHARE = 0.25
SPARK_JVM_OVERHEAD_SHARE = 0.10
SPARK_JVM_OVERHEAD_MIN_MB = 384
SPARK_EXECUTOR_MIN_MB = 512


def spark_executor_mb(worker_mb: int) -> int:
    """`spark.executor.memory` (MiB) for a worker given `worker_mb` MiB in all."""
    jvm = worker_mb * (1 - SPARK_PYTHON_SHARE)
    heap = min(jvm - SPARK_JVM_OVERHEAD_MIN_MB, jvm / (1 + SPARK_JVM_OVERHEAD_SHARE))
    return max(SPARK_EXECUTOR_MIN_MB, int(heap))


_UNITS = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}


def memory_bytes(text: str) -> int:
    """`1GiB`, `512MB`, `2G` → bytes (binary units: what Dask and Spark mean in practice)."""
    m = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*', text, re.IGNORECASE)
    if not m:
        raise SettingsError(f'CLUSTER_MEMORY: expected a size like 1GiB, got {text!r}')
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def java_found(environ: dict[str, str]) -> bool:
    """Spark needs a JVM: JAVA_HOME/bin/java, or `java` on PATH."""
    home = environ.get('JAVA_HOME')
    if home and os.access(os.path.join(home, 'bin', 'java'), os.X_OK):
        return True
    return shutil.which('java', path=environ.get('PATH')) is not None


def _int(environ: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, '')
    if raw == '':
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f'{name}: expected an integer, got {raw!r}') from None
    if value < minimum:
        raise SettingsError(f'{name}: must be at least {minimum}, got {value}')
    return value


# What the controller's engine and client connection files take (see ipp.py).
IPP_PORTS_NEEDED = 15


def ipp_ports(text: str) -> tuple[int, ...]:
    """`10101-10116`, `10101,10105,10107` or a mix → the ports, in order."""
    ports: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(','))):
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise SettingsError(f'CLUSTER_IPP_PORTS: expected a range like 10101-10116 or a list of ports, got {text!r}')
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= first <= last <= 65535:
            raise SettingsError(f'CLUSTER_IPP_PORTS: {part!r} is not a range of ports from 1 to 65535')
        ports.extend(range(first, last + 1))
    if len(set(ports)) != len(ports):
        raise SettingsError(f'CLUSTER_IPP_PORTS: a port appears twice in {text!r}')
    return tuple(ports)


def _ipp_key(environ: dict[str, str], ports: tuple[int, ...], mode: str) -> str:
    """CLUSTER_IPP_KEY, checked: with it, scheduler and workers share nothing but the environment."""
    key = environ.get('CLUSTER_IPP_KEY', '')
    if not key:
        return ''
    # ipyparallel encodes the key as ASCII; whitespace would not survive being pasted into env.
    if not re.fullmatch(r'[\x21-\x7e]{16,}', key):
        raise SettingsError('CLUSTER_IPP_KEY: expected at least 16 printable ASCII characters without spaces')
    if mode != 'status' and len(ports) < IPP_PORTS_NEEDED:
        raise SettingsError(
            f'CLUSTER_IPP_PORTS: with CLUSTER_IPP_KEY, at least {IPP_PORTS_NEEDED} fixed ports are needed '
            f'(workers must know them), got {len(ports)}')
    return key


def _tls(environ: dict[str, str]) -> tuple[str, str, str]:
    """CLUSTER_TLS_CA/CERT/KEY: all three or none."""
    names = ('CLUSTER_TLS_CA', 'CLUSTER_TLS_CERT', 'CLUSTER_TLS_KEY')
    values = tuple(environ.get(n, '') for n in names)
    if any(values) and not all(values):
        missing = ', '.join(n for n, v in zip(names, values) if not v)
        raise SettingsError(f'{missing}: Dask TLS needs CLUSTER_TLS_CA, CLUSTER_TLS_CERT and CLUSTER_TLS_KEY together')
    return values  # type: ignore[return-value]


def _umask(environ: dict[str, str]) -> int | None:
    raw = environ.get('CLUSTER_UMASK', '')
    if raw == '':
        return None
    if not re.fullmatch(r'0?[0-7]{3}', raw):
        raise SettingsError(f'CLUSTER_UMASK: expected an octal mask like 077, got {raw!r}')
    return int(raw, 8)


def load(environ: dict[str, str], mode: str) -> Settings:
    """Read CLUSTER_* variables; `mode` is `scheduler`, `worker` or `status`."""
    e = environ
    bind = e.get('CLUSTER_BIND', '127.0.0.1')
    # Engines must be told a reachable address, never the wildcard.
    default_host = socket.gethostname() if bind in ('0.0.0.0', '::') else bind
    token = e.get('CLUSTER_JUPYTER_TOKEN', '')
    if mode == 'scheduler' and not token:
        raise SettingsError('CLUSTER_JUPYTER_TOKEN: required, Jupyter never runs without a token')
    base_url = e.get('CLUSTER_BASE_URL', '/')
    if not base_url.startswith('/'):
        raise SettingsError(f'CLUSTER_BASE_URL: must start with /, got {base_url!r}')
    if not base_url.endswith('/'):
        base_url += '/'
    spark = e.get('CLUSTER_SPARK', 'auto')
    if spark not in ('auto', 'on', 'off'):
        raise SettingsError(f'CLUSTER_SPARK: expected auto, on or off, got {spark!r}')
    if spark == 'auto':
        spark = 'on' if java_found(e) else 'off'
    elif spark == 'on' and not java_found(e):
        raise SettingsError('CLUSTER_SPARK=on but no java on PATH or in JAVA_HOME')
    memory = e.get('CLUSTER_MEMORY', '1GiB')
    home = e.get('HOME', '/tmp')
    ports = ipp_ports(e.get('CLUSTER_IPP_PORTS', ''))
    tls = _tls(e)
    return Settings(
        bind=bind,
        scheduler_host=e.get('CLUSTER_SCHEDULER_HOST', default_host),
        jupyter_port=_int(e, 'CLUSTER_JUPYTER_PORT', 8888, 1),
        jupyter_token=token,
        base_url=base_url,
        # Children run in the workspace: a path relative to where we started would move.
        workspace=os.path.abspath(e.get('CLUSTER_WORKSPACE', os.path.join(home, 'work'))),
        runtime_dir=os.path.abspath(e.get('CLUSTER_RUNTIME_DIR', os.path.join(home, '.clusterhub'))),
        dask_port=_int(e, 'CLUSTER_DASK_PORT', 8786, 1),
        dashboard_port=_int(e, 'CLUSTER_DASK_DASHBOARD_PORT', 8787, 1),
        ipp_ports=ports,
        ipp_key=_ipp_key(e, ports, mode),
        spark=spark,
        spark_port=_int(e, 'CLUSTER_SPARK_PORT', 7077, 1),
        spark_ui_port=_int(e, 'CLUSTER_SPARK_UI_PORT', 8080, 1),
        threads=_int(e, 'CLUSTER_THREADS', 1, 1),
        memory=memory,
        memory_mb=max(1, memory_bytes(memory) >> 20),
        engines=_int(e, 'CLUSTER_ENGINES', 1, 0),
        worker_name=e.get('CLUSTER_WORKER_NAME', socket.gethostname()),
        materials_git_url=e.get('CLUSTER_MATERIALS_GIT_URL', ''),
        materials_dir=e.get('CLUSTER_MATERIALS_DIR', 'materials'),
        stop_grace=float(_int(e, 'CLUSTER_STOP_GRACE', 10, 1)),
        tls_ca=tls[0],
        tls_cert=tls[1],
        tls_key=tls[2],
        spark_secret=e.get('CLUSTER_SPARK_SECRET', ''),
        umask=_umask(e),
    )
