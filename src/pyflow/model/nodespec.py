"""Nodespecs: checking a document and reading its ports the way the engine needs them.

A nodespec is stored exactly as the user wrote it (the original format's quirks included: string
orders, "required": "true", missing types). `NodeSpec` is the parsed view the engine works with.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import InvalidInput, detail, pointer
from .requirements import RequirementProblem, normalize_requirement, requirement_problems
from .types import DEFAULT_TYPE, PORT_TYPES, is_known_type, truthy
from .validation import schema_errors

DEFAULT_OUTPUT = "out"
# Ids the REST API uses for routes under /api/nodespecs/: a nodespec with one of them could not be read.
RESERVED_IDS = frozenset({"tree", "infer", "test"})


@dataclass(frozen=True)
class InputPort:
    name: str
    type: str
    order: int
    default: Any = None
    required: bool = False
    has_default: bool = False


@dataclass(frozen=True)
class OutputPort:
    name: str
    type: str


@dataclass(frozen=True)
class NodeSpec:
    """The parsed, engine-facing view of a nodespec document."""

    id: str
    title: str
    func: str
    inputs: tuple[InputPort, ...]
    outputs: tuple[OutputPort, ...]
    limits: dict = field(default_factory=dict)
    image: str | None = None
    requirements: tuple[str, ...] = ()
    cache: bool = True
    doc: dict = field(default_factory=dict, compare=False, repr=False)  # the document as stored
    flow: dict | None = field(default=None, compare=False, repr=False)  # the flow, for a subflow (flow:<id>)

    def input(self, name: str) -> InputPort | None:
        return self.inputs_by_name.get(name)

    def output(self, name: str) -> OutputPort | None:
        return self.outputs_by_name.get(name)

    # Ports by name, found once per nodespec: compiling and running a flow look ports up for every
    # node and link. (A cached_property writes to the instance's __dict__, which a frozen dataclass allows.)
    @cached_property
    def inputs_by_name(self) -> dict[str, InputPort]:
        return {p.name: p for p in reversed(self.inputs)}  # the first of a name wins, as a search would

    @cached_property
    def outputs_by_name(self) -> dict[str, OutputPort]:
        return {p.name: p for p in reversed(self.outputs)}


def parse_nodespec(doc: dict) -> NodeSpec:
    """Build the engine view of a document that passed `check_nodespec`."""
    port = doc.get("port") or {}
    raw_inputs = port.get("input") or []
    indexed = sorted(enumerate(raw_inputs), key=lambda pair: (int(pair[1].get("order", pair[0])), pair[0]))
    inputs = tuple(
        InputPort(
            name=p["name"],
            type=p.get("type") or DEFAULT_TYPE,
            order=int(p.get("order", i)),
            default=p.get("default"),
            required=truthy(p.get("required", False)),
            has_default="default" in p,
        )
        for i, p in indexed
    )
    raw_outputs = port.get("output") or [{"name": DEFAULT_OUTPUT}]
    outputs = tuple(OutputPort(p["name"], p.get("type") or DEFAULT_TYPE) for p in raw_outputs)
    return NodeSpec(
        id=doc["id"],
        title=doc.get("title") or doc["id"],
        func=doc["func"],
        inputs=inputs,
        outputs=outputs,
        limits=dict(doc.get("limits") or {}),
        image=doc.get("image"),
        requirements=_requirements(doc.get("requirements") or ()),
        cache=doc.get("cache", True) is not False,
        doc=doc,
    )


def _requirements(raw) -> tuple[str, ...]:
    """Canonical, sorted requirements; an entry stored before the rules existed is kept as written, and
    fails its node's environment build with the reason instead of hiding the nodespec."""
    found = set()
    for text in raw:
        try:
            found.add(normalize_requirement(text))
        except RequirementProblem:
            found.add(str(text))
    return tuple(sorted(found))


def check_nodespec(doc: Any, base: tuple = ()) -> list[dict]:
    """Every problem with a nodespec document, as details under the JSON pointer `base`.

    The function source is parsed and compiled, never executed: a syntax error is reported with its
    line and column.
    """
    problems = schema_errors("nodespec", doc, base)
    if problems:
        return problems
    if doc["id"] in RESERVED_IDS:
        problems.append(detail(pointer(*base, "id"), f"{doc['id']!r} is reserved (the REST API routes "
                                                       f"/api/nodespecs/{doc['id']}); choose another id"))
    problems += _port_problems(doc, base)
    if doc.get("requirements"):
        problems += requirement_problems(doc["requirements"], base)
    problems += _func_problems(doc, base)
    return problems


def _port_problems(doc: dict, base: tuple) -> list[dict]:
    problems = []
    port = doc.get("port") or {}
    for kind in ("input", "output"):
        seen = set()
        for i, p in enumerate(port.get(kind) or []):
            path = pointer(*base, "port", kind, i)
            ptype = p.get("type")
            if ptype is not None and not is_known_type(ptype):
                problems.append(detail(path + "/type",
                                       f"unknown port type {ptype!r}; known types: {', '.join(PORT_TYPES)}"))
            if p["name"] in seen:
                problems.append(detail(path + "/name", f"duplicate {kind} port name {p['name']!r}"))
            seen.add(p["name"])
    return problems


def _func_problems(doc: dict, base: tuple) -> list[dict]:
    path = pointer(*base, "func")
    source = doc["func"]
    try:
        tree = ast.parse(source, filename=f"<nodespec {doc['id']}>")
        compile(tree, f"<nodespec {doc['id']}>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [detail(path, f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [detail(path, f"cannot compile: {exc}")]
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "func"]
    if not funcs:
        return [detail(path, "must define a top-level function `def func(...)`")]
    return _arity_problems(funcs[-1], doc, base)


def _arity_problems(func: ast.FunctionDef, doc: dict, base: tuple) -> list[dict]:
    """Inputs are passed positionally in port order, so func must accept that many arguments."""
    args = func.args
    inputs = (doc.get("port") or {}).get("input") or []
    positional = len(args.posonlyargs) + len(args.args)
    path = pointer(*base, "port", "input")
    if args.vararg is None and len(inputs) > positional:
        return [detail(path, f"func accepts {positional} positional arguments but the nodespec "
                             f"declares {len(inputs)} input ports")]
    return _name_problems(args, [p["name"] for p in inputs], path)


def _name_problems(args: ast.arguments, ports: list[str], path: str) -> list[dict]:
    """A signature and a port table that disagree pass the save and fail every run: each required
    parameter must be a port, and each port a parameter unless func takes *args or **kwargs."""
    positional = args.posonlyargs + args.args
    required = [a.arg for a in positional[:len(positional) - len(args.defaults)]]
    required += [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    problems = []
    missing = [name for name in required if name not in ports]
    if missing:
        problems.append(detail(path, f"func requires {_names(missing)} but the nodespec has no input port "
                                     f"of that name; add the port or give the parameter a default"))
    params = {a.arg for a in positional + args.kwonlyargs}
    if args.vararg is None and args.kwarg is None:
        extra = [name for name in ports if name not in params]
        if extra:
            problems.append(detail(path, f"input port {_names(extra)} is not a parameter of func; rename "
                                         f"the port or add the parameter (or **kwargs)"))
    return problems


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def require_valid_nodespec(doc: Any) -> NodeSpec:
    """Check `doc` and return its engine view, or raise InvalidInput listing every problem."""
    problems = check_nodespec(doc)
    if problems:
        raise InvalidInput("invalid nodespec", problems)
    return parse_nodespec(doc)
