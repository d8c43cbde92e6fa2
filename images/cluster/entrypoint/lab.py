"""JupyterLab's settings for this cluster, written per start into the runtime dir (never
into the shared environment): the lab extensions point at this cluster, no prompt opens.
"""
from __future__ import annotations

import json
import os

from settings import DASHBOARD_PATH, Settings

# Its panel lists and starts clusters through a server extension we keep off (it would
# compete with the cluster we run); enabled, its lab side polls that extension and shows
# an error dialog on the 404.
IPP_LAB_PLUGIN = 'ipyparallel-labextension:plugin'


def overrides(s: Settings) -> dict:
    """overrides.json: defaults for JupyterLab's plugins (a student may still change them)."""
    return {
        # The "get notified about official Jupyter news?" prompt; the machine may be offline too.
        '@jupyterlab/apputils-extension:notification': {'fetchNews': 'false', 'checkForUpdates': False},
        # A notebook saved before it had a kernel (a cluster stopped before the autosave) would
        # open with a "Select Kernel" dialog at the next launch; there is one kernel, so use it.
        '@jupyterlab/notebook-extension:tracker': {'autoStartDefaultKernel': True},
        'dask-labextension:plugin': {
            # The student's own scheduler dashboard, through Jupyter's authenticated proxy.
            'defaultURL': f'{s.base_url}{DASHBOARD_PATH}',
            # Its "new cluster" buttons would start a cluster beside the one we run.
            'hideClusterManager': True,
        },
    }


def lab_app_config(s: Settings, settings_dir: str) -> dict:
    """The `LabApp` section of Jupyter's config."""
    lab_home = os.path.join(s.workspace, '.jupyter', 'lab')
    return {
        'app_settings_dir': settings_dir,
        # With the student's work (kept across stops, gone with a reset), not in the hub's HOME.
        'user_settings_dir': os.path.join(lab_home, 'user-settings'),
        'workspaces_dir': os.path.join(lab_home, 'workspaces'),
        # Its "install" would pip-install into the environment every cluster shares.
        'extension_manager': 'readonly',
    }


def write_lab_settings(s: Settings, settings_dir: str) -> None:
    """overrides.json and page_config.json in JupyterLab's app settings dir."""
    os.makedirs(settings_dir, exist_ok=True)
    files = {
        'overrides.json': overrides(s),
        'page_config.json': {'disabledExtensions': [IPP_LAB_PLUGIN]},
    }
    for name, data in files.items():
        path = os.path.join(settings_dir, name)
        with open(path + '.tmp', 'w') as f:
            json.dump(data, f, indent=2)
        os.replace(path + '.tmp', path)
