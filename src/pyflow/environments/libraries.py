"""The host's shared libraries an environment's extension modules load (libstdc++ for pandas, say).

Wheels bring most of their libraries with them (auditwheel's `<package>.libs/`), but the manylinux
rules let them rely on a few of the system's (libstdc++, libgcc_s, libm, libz ...). The sandbox binds
only what it must, so those are found here, once per environment, by reading the ELF files' DT_NEEDED
entries with pyelftools: reading, never running (`ldd` would start the loader on the package's files).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

# Where the host's loader looks by default on Debian-like systems (ld.so.cache's usual contents).
HOST_LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                     "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")
MAX_FILES = 20000
LIBRARY_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*\.so(\.[0-9]+)*$")


def needed_names(path: str) -> list[str]:
    """The DT_NEEDED entries of one ELF file ([] when it is not one)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                return []
            fh.seek(0)
            elf = ELFFile(fh)
            names = []
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    names += [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
            return names
    except (OSError, ELFError, ValueError, KeyError, AssertionError) as exc:
        log.debug("cannot read %s as ELF: %s", path, exc)
        return []


def host_libraries(site: Path, already: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The host libraries (real paths) that the ELF files under `site` need, directly or through each
    other, leaving out those the environment ships itself and those in `already` (the interpreter's)."""
    shipped = set()
    pending = []
    for root, _dirs, files in os.walk(site):
        for name in files:
            shipped.add(name)
            if (".so" in name) and len(pending) < MAX_FILES:
                pending.append(os.path.join(root, name))
    wanted = {n for f in pending for n in needed_names(f)} - shipped
    found: dict[str, str] = {}
    queue = sorted(wanted)
    while queue:
        name = queue.pop()
        if name in found:
            continue
        path = on_host(name)
        if path is None:
            continue
        found[name] = path
        queue += [n for n in needed_names(path) if n not in found and n not in shipped]
    return sorted(p for p in set(found.values()) if p not in already)


def on_host(name: str) -> str | None:
    """The host's library file called `name`, if `name` is a library's file name at all: a package's
    ELF file chooses its DT_NEEDED names, and ".." or a directory must never widen what is bound."""
    if not LIBRARY_NAME.match(name):
        return None
    for folder in HOST_LIBRARY_DIRS:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None
