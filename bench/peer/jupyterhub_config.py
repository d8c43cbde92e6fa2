"""JupyterHub as the benchmarks run it: production-like (managed CHP, sqlite, info logs).

Settings come from BENCH_* environment variables set by bench/side-by-side/jupyterhub.ts.
"""
import os

env = os.environ
c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["BENCH_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["BENCH_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(env['BENCH_PORT']) + 1}"
c.ConfigurableHTTPProxy.command = [env["BENCH_CHP"]]
c.ConfigurableHTTPProxy.auth_token = env["BENCH_PROXY_TOKEN"]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = f"sqlite:///{env['BENCH_STATE']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{env['BENCH_STATE']}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{env['BENCH_STATE']}/jupyterhub.pid"
c.JupyterHub.log_level = "INFO"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.active_server_limit = 0
c.JupyterHub.authenticate_prometheus = False
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{"name": "bench", "api_token": env["BENCH_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "bench",
        "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "read:servers", "tokens"],
        "services": ["bench"],
    }
]

if env.get("BENCH_SPAWNER") == "kubespawner":
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.enable_user_namespaces = True
    c.KubeSpawner.user_namespace_template = env["BENCH_NS_TEMPLATE"]
    c.KubeSpawner.image = "registry.invalid/singleuser:bench"
    c.KubeSpawner.image_pull_policy = "IfNotPresent"
    c.KubeSpawner.start_timeout = int(env.get("BENCH_START_TIMEOUT", "120"))
    c.KubeSpawner.http_timeout = int(env.get("BENCH_START_TIMEOUT", "120"))
    c.KubeSpawner.cpu_guarantee = 0.01
    c.KubeSpawner.mem_guarantee = "16M"
    c.KubeSpawner.node_selector = {"type": "kwok"}
    c.KubeSpawner.tolerations = []
    # KubeSpawner gives a pod create 3 s by default: with 100 launches at once on 2 cores
    # some took longer and failed ("TimeoutError"); an operator launching a class raises it.
    c.KubeSpawner.k8s_api_request_timeout = 30
    c.KubeSpawner.k8s_api_request_retry_timeout = 120
else:
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    c.JupyterHub.spawner_class = "instant_spawner.InstantSpawner"
