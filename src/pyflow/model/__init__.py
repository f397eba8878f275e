"""The model layer: nodespecs, flows, ports, bundles and their JSON Schema validation.

Depends only on the standard library and jsonschema. Node code is parsed and compiled here, never run.
"""

from .errors import (Conflict, InvalidInput, NotFound, PayloadTooLarge, PreconditionFailed, PyflowError,
                     ServiceUnavailable, TooManyRequests, UnsupportedMediaType, detail, pointer)
from .flow import FlowGraph, FlowNode, analyze_flow, referenced_spec_ids, require_valid_flow
from .nodespec import InputPort, NodeSpec, OutputPort, check_nodespec, parse_nodespec, require_valid_nodespec

__all__ = [
    "Conflict", "InvalidInput", "NotFound", "PayloadTooLarge", "PreconditionFailed", "PyflowError",
    "ServiceUnavailable", "TooManyRequests", "UnsupportedMediaType", "detail", "pointer",
    "FlowGraph", "FlowNode", "analyze_flow", "referenced_spec_ids", "require_valid_flow",
    "InputPort", "NodeSpec", "OutputPort", "check_nodespec", "parse_nodespec", "require_valid_nodespec",
]
