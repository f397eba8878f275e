"""The engine: compile flows into checked graphs, order and schedule nodes, cache results.

Imports no web framework. Runs node code only through an `Executor`.
"""

from .compiler import CompiledFlow, PlannedNode, compile_flow
from .plans import Plan, PlanCache
from .execution import DEFAULT_LIMITS, MAX_LIMITS, Executor, Limits, NodeOutcome, NodeTask, resolve_limits
from .runner import CacheStore, FlowRunner, RunOptions, RunOutcome, run_flow

__all__ = [
    "CompiledFlow", "PlannedNode", "compile_flow", "Plan", "PlanCache", "DEFAULT_LIMITS", "MAX_LIMITS", "Executor", "Limits",
    "NodeOutcome", "NodeTask", "resolve_limits", "CacheStore", "FlowRunner", "RunOptions", "RunOutcome",
    "run_flow",
]
