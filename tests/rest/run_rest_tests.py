"""Run every pyresttest file here against a real PyFlow server (sandbox executor, temporary SQLite
database) started on a free loopback port, one server per file. Exits non-zero when any test fails."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.support.server import LiveServer  # noqa: E402

RESTTEST = Path(sys.executable).with_name("resttest.py")
# Files that need a server with tighter limits, and the options that set them.
SERVER_ARGS = {"limits.yaml": ("--max-body-mb", "1", "--max-queue", "1", "--max-running", "1")}
LARGE_BODY = HERE / ".large-body.json"
DEEP_BODY = HERE / ".deep-body.json"  # a flow whose port value nests 5,000 levels deep


def run_file(path: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="pyflow-rest-") as tmp:
        with LiveServer(Path(tmp), args=SERVER_ARGS.get(path.name, ())) as server:
            print(f"== {path.name} against {server.url}", flush=True)
            result = subprocess.run([sys.executable, str(RESTTEST), server.url, str(path), "--verbose"],
                                    cwd=HERE, capture_output=True, text=True)
            print("\n".join(line for line in result.stdout.splitlines() + result.stderr.splitlines()
                            if "FAIL" in line or "PASS" in line or "Test Group" in line or "ERROR" in line))
            if result.returncode != 0:
                print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
                print(f"server log:\n{server.log()[-3000:]}")
            return result.returncode == 0


def main(names: list[str]) -> int:
    files = [HERE / n for n in names] if names else sorted(HERE.glob("*.yaml"))
    LARGE_BODY.write_text('{"id": "big", "title": "' + "x" * (2 * 1024 * 1024) + '"}')
    DEEP_BODY.write_text('{"id": "deep", "links": [], "nodes": [{"id": "n1", "spec_id": "limits.echo", "ports": '
                         '[{"name": "a", "value": ' + "[" * 5000 + "]" * 5000 + "}]}]}")
    if not files:
        print("no pyresttest files found", file=sys.stderr)
        return 1
    try:
        failed = [f.name for f in files if not run_file(f)]
    finally:
        LARGE_BODY.unlink(missing_ok=True)
        DEEP_BODY.unlink(missing_ok=True)
    print(f"pyresttest: {len(files) - len(failed)} of {len(files)} files passed" +
          (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
