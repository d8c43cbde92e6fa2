"""`start scheduler|worker|status [--watch]` — see ../README.md."""
from __future__ import annotations

import os
import shutil
import sys

from ipp import ensure_engine_file
from materials import clone_command
from modes import scheduler_commands, worker_commands
from settings import SettingsError, load
from supervisor import Supervisor, log
from wiring import child_env, paths, write_scheduler_files

USAGE = 'usage: start scheduler|worker|status [--watch]'


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else ''
    if mode not in ('scheduler', 'worker', 'status'):
        print(USAGE, file=sys.stderr)
        return 2
    environ = dict(os.environ)
    try:
        s = load(environ, mode)
    except SettingsError as err:
        print(f'start {mode}: {err}', file=sys.stderr)
        return 2
    if s.umask is not None:
        # A student's files (and /tmp files) are theirs alone on a shared machine.
        os.umask(s.umask)
    if mode == 'status':
        from status import run
        return run(s, '--watch' in argv[2:])

    os.makedirs(s.workspace, exist_ok=True)
    # Engines refuse a missing profile dir; they wait for the controller's file inside it.
    os.makedirs(paths(s)['security'], exist_ok=True)
    if mode == 'worker':
        os.makedirs(paths(s)['worker_dir'], exist_ok=True)
    log(f'{mode} mode, listening on {s.bind}, scheduler at {s.scheduler_host}')
    if mode == 'worker' and s.ipp_key:
        # No shared files (Kubernetes): the engines' connection file comes from the environment.
        log(ensure_engine_file(s, paths(s)['security']))
    if s.spark == 'off' and environ.get('CLUSTER_SPARK', 'auto') == 'auto':
        log('Spark skipped: no java on PATH or in JAVA_HOME (Dask and IPython Parallel start without it)')
    env = child_env(s, environ)

    if mode == 'scheduler':
        write_scheduler_files(s)
        commands = scheduler_commands(s)
        supervisor = Supervisor(grace=s.stop_grace)
    else:
        from retire import retire_worker
        commands = worker_commands(s)
        supervisor = Supervisor(grace=s.stop_grace, drain=lambda: retire_worker(s))

    for name, command in commands:
        supervisor.start(name, command, env, s.workspace)
    if mode == 'scheduler' and s.materials_git_url:
        clone = clone_command(s)
        if clone:
            # Optional: a failed clone is a warning in the log, never a dead cluster.
            env_git = {**env, 'GIT_TERMINAL_PROMPT': '0'}
            # The instructor's URL may be a repository on this machine owned by another account
            # (the hub's): git refuses those as "dubious ownership" unless its global config
            # trusts them (git before 2.40 ignores safe.directory given any other way).
            trust = os.path.join(s.runtime_dir, 'materials.gitconfig')
            with open(trust, 'w') as f:
                f.write('[safe]\n\tdirectory = *\n')
            env_git['GIT_CONFIG_GLOBAL'] = trust
            supervisor.start('materials', clone, env_git, s.workspace, required=False)
        elif shutil.which('git') is None:
            log('warning: CLUSTER_MATERIALS_GIT_URL is set but git is not installed')
    return supervisor.run()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
