"""The "dask" executor: flows across a Dask distributed cluster, every node still in a sandbox.

The server submits each ready node as a Dask task (executor.py); each Dask worker that takes PyFlow
nodes carries a plugin that runs them in that machine's bubblewrap sandbox, one warm pool per worker
process, and kills a node's sandbox when its task is cancelled (plugin.py). cluster.py holds what makes
a Dask worker a PyFlow worker, for the LocalCluster the server starts without a scheduler address and
for `pyflow worker`. Needs `pip install 'pyflow[dask]'`.
"""

from .cluster import SCHEDULER_CONFIG, SCHEDULER_ENV, local_cluster, sandbox_problem, worker_settings
from .executor import DaskExecutor, node_key
from .plugin import PLUGIN_NAME, RESOURCE, SandboxPlugin, run_node

__all__ = ["DaskExecutor", "SandboxPlugin", "PLUGIN_NAME", "RESOURCE", "SCHEDULER_CONFIG", "SCHEDULER_ENV",
           "local_cluster", "node_key", "sandbox_problem", "run_node", "worker_settings"]
