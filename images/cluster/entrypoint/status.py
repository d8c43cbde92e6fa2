"""`start status [--watch]`: what the cluster's engines report, as JSON lines.

{"jupyter": bool|null, "dask": {"up", "workers"}, "ipp": {"up", "engines"},
 "spark": {"up", "workers"}|null}

Each engine is asked directly (HTTP for Jupyter, the Dask dashboard and the Spark
master UI; an IPython Parallel client for engines). With --watch a line is printed
whenever the answer changes, until our parent goes away.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

from settings import Settings
from wiring import local_host, paths


def _get_json(url: str, headers: dict[str, str] | None = None) -> object | None:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read() or b'null')
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Probe:
    """Holds the IPython Parallel client between checks (connecting is the slow part)."""

    def __init__(self, s: Settings):
        self.s = s
        self.host = local_host(s)
        self.ipp_client = None

    def jupyter(self) -> bool | None:
        if not self.s.jupyter_token:
            return None
        url = f'http://{self.host}:{self.s.jupyter_port}{self.s.base_url}api/status'
        return _get_json(url, {'Authorization': f'token {self.s.jupyter_token}'}) is not None

    def dask(self) -> dict:
        counts = _get_json(f'http://127.0.0.1:{self.s.dashboard_port}/json/counts.json')
        if not isinstance(counts, dict):
            return {'up': False, 'workers': 0}
        return {'up': True, 'workers': int(counts.get('workers', 0))}

    def ipp(self) -> dict:
        url_file = os.path.join(paths(self.s)['security'], 'ipcontroller-client.json')
        if self.ipp_client is None:
            if not os.path.exists(url_file):
                return {'up': False, 'engines': 0}
            import ipyparallel
            try:
                self.ipp_client = ipyparallel.Client(url_file, timeout=3)
            except Exception:
                return {'up': False, 'engines': 0}
        try:
            return {'up': True, 'engines': len(self.ipp_client.ids)}
        except Exception:
            self.ipp_client = None
            return {'up': False, 'engines': 0}

    def spark(self) -> dict | None:
        if self.s.spark != 'on':
            return None
        master = _get_json(f'http://{self.host}:{self.s.spark_ui_port}/json/')
        if not isinstance(master, dict):
            return {'up': False, 'workers': 0}
        return {'up': True, 'workers': int(master.get('aliveworkers', 0))}

    def check(self) -> dict:
        return {'jupyter': self.jupyter(), 'dask': self.dask(), 'ipp': self.ipp(), 'spark': self.spark()}


def run(s: Settings, watch: bool) -> int:
    probe = Probe(s)
    if not watch:
        answer = probe.check()
        print(json.dumps(answer), flush=True)
        up = [answer['dask']['up'], answer['ipp']['up'], answer['jupyter'] is not False,
              answer['spark'] is None or answer['spark']['up']]
        return 0 if all(up) else 1
    parent = os.getppid()
    last = None
    while os.getppid() == parent:
        answer = json.dumps(probe.check())
        if answer != last:
            print(answer, flush=True)
            last = answer
        time.sleep(0.25)  # the engines offer no change feed; this bounds the probe's cost
    return 0
