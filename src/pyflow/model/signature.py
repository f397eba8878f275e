"""Build a nodespec from Python source by reading its syntax tree (the code is never executed).

Ports come from the signature of `func`: names and order from the parameters, types from annotations,
defaults from default values. Output names come from a TypedDict return annotation defined in the same
source, or from the docstring (":returns: a, b" as the original PyFlow wrote it, or "Returns: a, b").
A module-level `spec = {...}` literal (the original's node files) supplies id and title.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from typing import Any

from .errors import InvalidInput, detail
from .requirements import suggested_requirements

ANNOTATION_TYPES = {
    "str": "String", "int": "Int", "float": "Float", "bool": "Boolean",
    "list": "List", "List": "List", "tuple": "List", "Tuple": "List", "Sequence": "List",
    "dict": "Dict", "Dict": "Dict", "Mapping": "Dict", "MutableMapping": "Dict", "Any": "Any", "object": "Any",
    "ndarray": "Array", "DataFrame": "DataFrame", "Image": "Image", "Figure": "Image",  # np.ndarray, PIL.Image.Image, ...
}
RETURNS_LINE = re.compile(r"^\s*:?returns?:?\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def annotation_type(node: ast.expr | None) -> str:
    """The port type for an annotation expression; unknown or missing annotations give Any."""
    if node is None:
        return "Any"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return "Any"
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return ANNOTATION_TYPES.get(node.attr, "Any")
    if isinstance(node, ast.Name):
        return ANNOTATION_TYPES.get(node.id, "Any")
    return "Any"


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """A default's value when it is a literal JSON can hold; bytes, sets, complex numbers, Ellipsis and
    numbers beyond a float (1e400 is inf) are not, and would break the JSON answer."""
    try:
        value = ast.literal_eval(node)
        json.dumps(value, allow_nan=False)
        return True, value
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _input_ports(func: ast.FunctionDef) -> list[dict]:
    args = func.args.posonlyargs + func.args.args
    defaults = [None] * (len(args) - len(func.args.defaults)) + list(func.args.defaults)
    ports = []
    for order, (arg, default) in enumerate(zip(args, defaults)):
        port = {"name": arg.arg, "order": order, "type": annotation_type(arg.annotation)}
        if default is None:
            port["required"] = True
        else:
            ok, value = _literal(default)
            if ok:
                port["default"] = value
        ports.append(port)
    return ports


def _typed_dicts(tree: ast.Module) -> dict[str, list[dict]]:
    """Output ports of each `class X(TypedDict)` in the source: {class name: [{name, type}]}."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(_base_name(b) == "TypedDict" for b in node.bases):
            found[node.name] = [{"name": st.target.id, "type": annotation_type(st.annotation)}
                                for st in node.body
                                if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)]
    return found


def _base_name(node: ast.expr) -> str:
    return getattr(node, "id", None) or getattr(node, "attr", "")


def _needs_lazy_annotations(func: ast.FunctionDef) -> bool:
    """True when an annotation names something other than a builtin (a TypedDict, typing.List):
    defined alone in the sandbox, the function would fail on it unless annotations stay strings."""
    args = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
    notes = [a.annotation for a in args if a.annotation is not None] + ([func.returns] if func.returns else [])
    names = {n.id for note in notes for n in ast.walk(note) if isinstance(n, ast.Name)}
    dotted = any(isinstance(n, ast.Attribute) for note in notes for n in ast.walk(note))
    return dotted or bool(names - set(dir(builtins)))


def _output_ports(func: ast.FunctionDef, tree: ast.Module) -> list[dict]:
    returns = func.returns
    typed = _typed_dicts(tree)
    if isinstance(returns, ast.Name) and returns.id in typed and typed[returns.id]:
        return typed[returns.id]
    doc = ast.get_docstring(func) or ""
    match = RETURNS_LINE.search(doc)
    if match:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        if names and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names):
            if len(names) == 1:
                return [{"name": names[0], "type": annotation_type(returns)}]
            return [{"name": n, "type": "Any"} for n in names]
    return [{"name": "out", "type": annotation_type(returns)}]


def _module_spec(tree: ast.Module) -> dict:
    """The original node files' `spec = {"id": ..., "title": ...}` literal, if present."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "spec"):
            ok, value = _literal(node.value)
            if ok and isinstance(value, dict):
                return value
    return {}


def _find_func(tree: ast.Module, name: str | None) -> ast.FunctionDef:
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    wanted = name or ("func" if any(f.name == "func" for f in funcs) else None)
    chosen = [f for f in funcs if f.name == wanted] if wanted else funcs[:1]
    if not chosen:
        raise InvalidInput("no function found", [detail("/func", f"no top-level function {wanted or ''!s}".strip())])
    return chosen[-1]


def infer_ports(source: str, function: str | None = None) -> dict:
    """The {"input": [...], "output": [...]} ports of a function's signature."""
    tree = parse_source(source)
    func = _find_func(tree, function)
    return {"input": _input_ports(func), "output": _output_ports(func, tree),
            "requirements": suggested_requirements(source)}


def parse_source(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput("syntax error", [detail("/func", f"syntax error at line {exc.lineno}, "
                                                            f"column {exc.offset}: {exc.msg}")]) from None
    except (RecursionError, MemoryError) as exc:
        raise InvalidInput("cannot parse", [detail("/func", f"cannot parse: {exc}")]) from None


def nodespec_from_source(source: str, spec_id: str | None = None, function: str | None = None) -> dict:
    """A complete nodespec document for the function in `source`; the function is renamed `func`."""
    tree = parse_source(source)
    func = _find_func(tree, function)
    meta = _module_spec(tree)
    segment = ast.get_source_segment(source, func, padded=False) or ""
    if func.decorator_list:
        segment = segment[segment.index("def "):] if "def " in segment else segment
    body = re.sub(r"^def\s+" + re.escape(func.name) + r"\b", "def func", segment, count=1)
    imports = _module_imports(source, tree)
    if imports:  # what the function's module imported, so that it runs on its own in the sandbox
        body = imports + "\n\n" + body
    if _needs_lazy_annotations(func):
        # Annotations may name types that exist only in the source file (a TypedDict, typing.List):
        # keep them as strings so the function can be defined on its own in the sandbox.
        body = "from __future__ import annotations\n\n" + body
    doc = ast.get_docstring(func) or ""
    spec = {
        "id": spec_id or meta.get("id") or func.name,
        "title": meta.get("title") or (doc.strip().splitlines()[0] if doc.strip() else func.name),
        "port": {"input": _input_ports(func), "output": _output_ports(func, tree)},
        "func": body.rstrip() + "\n",
    }
    if doc.strip():
        spec["description"] = doc.strip()
    for key in ("description", "tags", "limits", "cache", "image", "requirements"):
        if key in meta:
            spec[key] = meta[key]
    if "requirements" not in spec and suggested_requirements(source):
        spec["requirements"] = suggested_requirements(source)
    return spec


def _module_imports(source: str, tree: ast.Module) -> str:
    """The module-level import statements of `source` (but `from __future__`), as written."""
    lines = []
    for node in tree.body:
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__"):
            lines.append(ast.get_source_segment(source, node) or "")
    return "\n".join(line for line in lines if line)
