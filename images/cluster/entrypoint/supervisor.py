"""Run a set of child processes as one unit.

A required child that exits ends the whole unit with status 1: a cluster missing
an engine must not limp on. SIGTERM/SIGINT stop everything: an optional drain step
(graceful Dask retirement), then SIGTERM to every child, SIGKILL after a grace
period, and finally any orphaned descendant (a kernel whose server died) is killed.
All children stay in our process group so `kill -- -PGID` from outside reaches them.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

_out_lock = threading.Lock()


def log(message: str) -> None:
    """One line on stdout, prefixed like the children's lines."""
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    with _out_lock:
        sys.stdout.buffer.write(f'[supervisor] {stamp} {message}\n'.encode())
        sys.stdout.buffer.flush()


def _copy_lines(name: str, pipe) -> None:
    prefix = f'[{name}] '.encode()
    for line in iter(pipe.readline, b''):
        with _out_lock:
            sys.stdout.buffer.write(prefix + line if line.endswith(b'\n') else prefix + line + b'\n')
            sys.stdout.buffer.flush()
    pipe.close()


def become_subreaper() -> None:
    """Orphans (kernels whose Jupyter died) re-parent to us, so we can reap and kill them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def descendants(root: int) -> list[int]:
    """Pids below `root`, read from /proc (empty where there is no /proc)."""
    parent: dict[int, int] = {}
    try:
        entries = os.listdir('/proc')
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', 'rb') as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name, which may contain spaces and parentheses.
        fields = stat[stat.rindex(b')') + 2:].split()
        parent[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parent.items() if pp == pid]
        found.extend(kids)
        frontier.extend(kids)
    return found


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    required: bool
    exit_code: int | None = None


class Supervisor:
    """Start children with `start`, then `run()` until they end; returns the exit status."""

    def __init__(self, grace: float, drain: Callable[[], None] | None = None, drain_timeout: float = 30.0):
        self.grace = grace
        self.drain = drain
        self.drain_timeout = drain_timeout
        self.children: dict[int, Child] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        signal.set_wakeup_fd(self._wake_w)
        become_subreaper()

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: str, required: bool = True) -> Child:
        """Start one child whose output lines are copied to ours with a `[name]` prefix."""
        popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        child = Child(name, popen, required)
        self.children[popen.pid] = child
        threading.Thread(target=_copy_lines, args=(name, popen.stdout), daemon=True).start()
        log(f'started {name} (pid {popen.pid})')
        return child

    def alive(self) -> list[Child]:
        return [c for c in self.children.values() if c.exit_code is None]

    def _reap(self) -> list[Child]:
        ended: list[Child] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return ended
            if pid == 0:
                return ended
            child = self.children.get(pid)
            if child is None:
                continue  # an adopted orphan
            child.exit_code = os.waitstatus_to_exitcode(status)
            child.popen.returncode = child.exit_code
            ended.append(child)

    def _signal_all(self, sig: int) -> None:
        for child in self.alive():
            try:
                os.kill(child.popen.pid, sig)
            except ProcessLookupError:
                pass

    def _drain_then_wake(self, done: threading.Event) -> None:
        try:
            self.drain and self.drain()
        except Exception as err:  # a failed drain must not block the stop
            log(f'drain failed: {err}')
        done.set()
        try:
            os.write(self._wake_w, b'\0')
        except BlockingIOError:
            pass

    def run(self) -> int:
        status = 0
        phase = 'running'
        deadline = float('inf')
        drained = threading.Event()
        while True:
            timeout = None if deadline == float('inf') else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([self._wake_r], [], [], timeout)
            except InterruptedError:
                ready = []
            signals = os.read(self._wake_r, 4096) if ready else b''
            # A stop first: a group-wide SIGTERM reaches the children too, and their exits
            # in the same wake-up are part of the stop, not an engine dying.
            if phase == 'running' and any(s in (signal.SIGTERM, signal.SIGINT) for s in signals):
                log('stop requested')
                if self.drain:
                    phase, deadline = 'draining', time.monotonic() + self.drain_timeout
                    threading.Thread(target=self._drain_then_wake, args=(drained,), daemon=True).start()
                else:
                    phase, deadline = 'terminating', time.monotonic() + self.grace
                    self._signal_all(signal.SIGTERM)
            for child in self._reap():
                if not child.required and child.exit_code != 0:
                    log(f'warning: {child.name} failed with status {child.exit_code}')
                else:
                    level = 'died' if phase == 'running' and child.required else 'exited'
                    log(f'{child.name} {level} with status {child.exit_code}')
                if phase == 'draining':
                    # Our children were signalled along with us: nothing left to drain.
                    phase, deadline = 'terminating', time.monotonic() + self.grace
                    self._signal_all(signal.SIGTERM)
                elif phase == 'running' and child.required:
                    status = 1
                    phase, deadline = 'terminating', time.monotonic() + self.grace
                    log(f'stopping everything because {child.name} is gone')
                    self._signal_all(signal.SIGTERM)
            now = time.monotonic()
            if phase == 'draining' and (drained.is_set() or now >= deadline):
                phase, deadline = 'terminating', now + self.grace
                self._signal_all(signal.SIGTERM)
            if phase == 'terminating' and now >= deadline:
                log(f'children still running after {self.grace:.0f}s: killing them')
                phase, deadline = 'killing', now + 5
                self._signal_all(signal.SIGKILL)
            if phase in ('terminating', 'killing') and not self.alive():
                break
            if phase == 'killing' and now >= deadline:
                break
            if phase == 'running' and not any(c.required for c in self.alive()):
                log('no required child left')
                break
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log(f'exiting with status {status}')
        return status
