"""IPython Parallel connection files made from the environment, for hosts that share no files.

Without CLUSTER_IPP_KEY the controller invents a key and random ports and writes its
connection files into the runtime dir, which engines on the same machine read. With the
key (and fixed CLUSTER_IPP_PORTS), both sides compute the same files from the same
variables: the scheduler writes them and starts the controller with `reuse_files`, so it
binds exactly what the files say; a worker writes its own engine file, pointed at
CLUSTER_SCHEDULER_HOST. The shape is what ipyparallel 9.2's controller writes itself.
"""
from __future__ import annotations

import json
import os

from settings import IPP_PORTS_NEEDED, Settings

ENGINE_FILE = 'ipcontroller-engine.json'
CLIENT_FILE = 'ipcontroller-client.json'

# The controller's defaults, which the files must agree with: broadcast_scheduler_depth 1
# gives 2 leaf schedulers, the Session packs JSON signed with HMAC-SHA256, tasks go leastload.
BROADCAST_LEAVES = 2
SIGNATURE_SCHEME = 'hmac-sha256'
PACKER = 'json'
TASK_SCHEME = 'leastload'


def connection_files(s: Settings, host: str) -> tuple[dict, dict, list[int]]:
    """(engine file, client file, ports left for the controller's internal sockets).

    `host` is the interface in the files: the bind address for the controller itself,
    the scheduler's host for a worker's engines. Ports are taken in the order the
    controller takes them from `IPController.ports`, engines' first.
    """
    if len(s.ipp_ports) < IPP_PORTS_NEEDED:
        raise ValueError(f'{IPP_PORTS_NEEDED} IPython Parallel ports needed, got {len(s.ipp_ports)}')
    pool = iter(s.ipp_ports)
    registration = next(pool)
    engine = {
        'ssh': '',
        'interface': f'tcp://{host}',
        'registration': registration,
        'control': next(pool),
        'mux': next(pool),
        'task': next(pool),
        'iopub': next(pool),
        'hb_ping': next(pool),
        'hb_pong': next(pool),
        'broadcast': [next(pool) for _ in range(BROADCAST_LEAVES)],
    }
    client = {
        'ssh': '',
        'interface': f'tcp://{host}',
        'registration': registration,
        'control': next(pool),
        'mux': next(pool),
        'task': next(pool),
        'task_scheme': TASK_SCHEME,
        'iopub': next(pool),
        'notification': next(pool),
        'broadcast': next(pool),
    }
    common = {
        'key': s.ipp_key,
        'curve_serverkey': None,
        'location': s.scheduler_host,
        'pack': PACKER,
        'unpack': PACKER,
        'signature_scheme': SIGNATURE_SCHEME,
    }
    return {**engine, **common}, {**client, **common}, list(pool)


def write_private(path: str, data: dict) -> None:
    """JSON readable by its owner only (it holds the key), replaced atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(json.dumps(data, indent=2))
    os.chmod(path + '.tmp', 0o600)  # O_CREAT's mode does not apply to a leftover .tmp
    os.replace(path + '.tmp', path)


def write_controller_files(s: Settings, security_dir: str) -> dict:
    """The scheduler's engine and client files; returns the IPController config that reuses them."""
    engine, client, rest = connection_files(s, s.bind)
    write_private(os.path.join(security_dir, ENGINE_FILE), engine)
    write_private(os.path.join(security_dir, CLIENT_FILE), client)
    # The controller still draws its loopback-internal sockets from `ports`: only the unused rest.
    return {'reuse_files': True, 'ports': rest}


def ensure_engine_file(s: Settings, security_dir: str) -> str:
    """A worker's engine file from the environment, unless the controller's own (same key) is there."""
    path = os.path.join(security_dir, ENGINE_FILE)
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError):
        found = None
    if isinstance(found, dict) and found.get('key') == s.ipp_key:
        return f'IPython engines use the connection file found at {path}'
    engine, _, _ = connection_files(s, s.scheduler_host)
    write_private(path, engine)
    return f'IPython engines connect to tcp://{s.scheduler_host}:{engine["registration"]} (connection file written from CLUSTER_IPP_KEY)'
