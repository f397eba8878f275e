"""A nodespec's `requirements`: PEP 508 requirement strings, checked and normalized once, here.

Only names from a package index are allowed: `name`, `name[extra]`, `name<op>version` (several
specifiers joined by commas) and environment markers (`; python_version < "3.12"`). URLs (`name @ https://`),
paths, pip options (`-e`, `--index-url`) and anything else that would make the installer fetch code
from somewhere other than the configured index are refused, naming the entry. `packaging` does the
parsing, as pip and uv do.
"""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .errors import InvalidInput, detail, pointer

MAX_REQUIREMENTS = 50
MAX_LENGTH = 200


class RequirementProblem(ValueError):
    """One requirement string that is not allowed; the message says why."""


def normalize_requirement(text: str) -> str:
    """One requirement in canonical form (`Pandas >=2.0` -> `pandas>=2.0`), or RequirementProblem."""
    if not isinstance(text, str):
        raise RequirementProblem(f"a requirement must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise RequirementProblem("a requirement must not be empty")
    if len(stripped) > MAX_LENGTH:
        raise RequirementProblem(f"a requirement is at most {MAX_LENGTH} characters long")
    if stripped.startswith(("-", "/", ".", "~")) or "://" in stripped or "\\" in stripped:
        raise RequirementProblem(f"{stripped[:80]!r} is not a package name: options (-e, --index-url), paths "
                                 f"and URLs are not allowed; name a package on the index, e.g. 'numpy>=1.26'")
    try:
        req = Requirement(stripped)
    except InvalidRequirement as exc:
        raise RequirementProblem(f"{stripped[:80]!r} is not a valid requirement ({exc})") from None
    if req.url:
        raise RequirementProblem(f"{stripped[:80]!r} installs from a URL; name a package on the index instead")
    extras = f"[{','.join(sorted(canonicalize_name(e) for e in req.extras))}]" if req.extras else ""
    specifier = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{specifier}{marker}"


def normalize_requirements(requirements) -> tuple[str, ...]:
    """A requirement list as one canonical, sorted, duplicate-free tuple (the environment's identity), or
    InvalidInput naming each entry that is not allowed (`/requirements/<index>`)."""
    if requirements is None:
        return ()
    problems = requirement_problems(requirements)
    if problems:
        raise InvalidInput("invalid requirements", problems)
    return tuple(sorted({normalize_requirement(r) for r in requirements}))


def requirement_problems(requirements, base: tuple = ()) -> list[dict]:
    """Every problem with a requirement list, as details under `base` + "requirements"."""
    if not isinstance(requirements, (list, tuple)):
        return [detail(pointer(*base, "requirements"), "requirements must be a list of strings")]
    if len(requirements) > MAX_REQUIREMENTS:
        return [detail(pointer(*base, "requirements"),
                       f"at most {MAX_REQUIREMENTS} requirements per nodespec, got {len(requirements)}")]
    problems = []
    for index, text in enumerate(requirements):
        try:
            normalize_requirement(text)
        except RequirementProblem as exc:
            problems.append(detail(pointer(*base, "requirements", index), str(exc)))
    return problems


def requirement_names(requirements) -> list[str]:
    """The canonical project names a (valid) requirement list asks for."""
    return sorted({canonicalize_name(Requirement(r).name) for r in requirements})


# Import names whose distribution on the index is called something else (the usual surprises).
DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python-headless",
                 "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "skimage": "scikit-image",
                 "Crypto": "pycryptodome", "OpenSSL": "pyopenssl", "jwt": "pyjwt", "dotenv": "python-dotenv",
                 "magic": "python-magic", "serial": "pyserial", "usb": "pyusb", "attr": "attrs",
                 "google.protobuf": "protobuf", "docx": "python-docx", "pptx": "python-pptx", "fitz": "pymupdf",
                 "Bio": "biopython", "sentencepiece": "sentencepiece", "zmq": "pyzmq", "gi": "pygobject",
                 "lxml": "lxml", "mpl_toolkits": "matplotlib", "pkg_resources": "setuptools"}
NOT_FROM_INDEX = frozenset({"pyflow", "__future__"})


def suggested_requirements(source: str) -> list[str]:
    """Distributions to list as requirements for the modules `source` imports that are not in the
    standard library (sklearn -> scikit-learn, PIL -> pillow, ...). Parsed, never run."""
    import ast
    import sys
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    found = []
    for name in names:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in NOT_FROM_INDEX:
            continue
        dist = DISTRIBUTIONS.get(name) or DISTRIBUTIONS.get(top) or top.replace("_", "-").lower()
        if dist not in found:
            found.append(dist)
    return found
