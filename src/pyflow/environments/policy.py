"""Which packages a server lets nodespecs ask for: `allow` (any), `deny` (none) or an allow-list file.

The file names one project per line (`#` starts a comment); names compare in canonical form, so
`scikit_learn` in the file permits `scikit-learn`. The policy applies to what nodespecs ask for; the
dependencies those packages bring are the packages' own choice.
"""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from ..model.errors import PyflowError, detail, pointer
from ..model.requirements import requirement_names


class RequirementsRefused(PyflowError):
    """A requirement the server's policy does not permit (403, naming the entries)."""

    status = 403


class RequirementsPolicy:
    """:param rule: "allow", "deny" or the path of an allow-list file (read once, at start)."""

    def __init__(self, rule: str = "allow"):
        self.rule = rule
        self.permitted: frozenset[str] | None = None
        if rule not in ("allow", "deny"):
            try:
                text = Path(rule).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read the requirements policy file {rule}: {exc.strerror}") from None
            names = (line.split("#", 1)[0].strip() for line in text.splitlines())
            self.permitted = frozenset(canonicalize_name(n) for n in names if n)

    def refused(self, requirements) -> list[str]:
        """The project names in `requirements` that the policy does not permit."""
        names = requirement_names(requirements)
        if self.rule == "allow":
            return []
        if self.rule == "deny":
            return names
        return [n for n in names if n not in self.permitted]

    def check(self, requirements, base: tuple = ()) -> None:
        """Raise RequirementsRefused naming each entry the policy does not permit."""
        refused = set(self.refused(requirements))
        if not refused:
            return
        problems = [detail(pointer(*base, "requirements", i), f"package {name!r} is not permitted on this server "
                                                              f"(requirements policy: {self.describe()})")
                    for i, text in enumerate(requirements)
                    for name in requirement_names([text]) if name in refused]
        raise RequirementsRefused("requirements not permitted", problems)

    def describe(self) -> str:
        if self.permitted is None:
            return "no third-party packages" if self.rule == "deny" else "any package"
        return f"allow-list {self.rule} ({len(self.permitted)} packages)"
