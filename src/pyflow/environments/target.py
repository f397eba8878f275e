"""The interpreter an environment is for: its version and platform, asked of it once.

The environment must suit the Python inside the sandbox (Debian's /usr/bin/python3), not the server's
own, so both the key and the installer's `--python` name that interpreter.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

PROBE = ("import json, platform, sys, sysconfig\n"
         "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], 'implementation': sys.implementation.name,"
         " 'platform': sysconfig.get_platform(), 'libc': '-'.join(platform.libc_ver())}))")


class TargetUnknown(Exception):
    """The interpreter could not be asked what it is."""


@dataclass(frozen=True)
class Target:
    python: str
    version: str
    implementation: str
    platform: str
    libc: str

    def identity(self) -> list:
        return [self.implementation, self.version, self.platform, self.libc]


def probe_target(python: str) -> Target:
    """Ask `python` (isolated, without site) for its version and platform."""
    try:
        out = subprocess.run([python, "-I", "-S", "-c", PROBE], capture_output=True, text=True, timeout=60,
                             check=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}).stdout
        found = json.loads(out)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise TargetUnknown(f"cannot ask {python} for its version and platform: {exc}") from None
    return Target(python=python, version=found["version"], implementation=found["implementation"],
                  platform=found["platform"], libc=found["libc"])
