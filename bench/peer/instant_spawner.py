"""A JupyterHub spawner that is ready at once, so a benchmark measures only hub and proxy.

Every server is the benchmark's one shared HTTP target (BENCH_TARGET_PORT), the same
target clusterhub's instant backend routes to.
"""
import os

from jupyterhub.spawner import Spawner


class InstantSpawner(Spawner):
    _running = False

    async def start(self):
        self._running = True
        return ("127.0.0.1", int(os.environ["BENCH_TARGET_PORT"]))

    async def stop(self, now=False):
        self._running = False

    async def poll(self):
        return None if self._running else 0

    def get_state(self):
        state = super().get_state()
        if self._running:
            state["running"] = True
        return state

    def load_state(self, state):
        super().load_state(state)
        self._running = bool(state.get("running"))

    def clear_state(self):
        super().clear_state()
        self._running = False
