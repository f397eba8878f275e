"""Node-RED's editor on the same graph as benchmarks/editor.py, measured the same way (issue 17, item 9).

Why: "fast" only means something beside an editor people know. Node-RED is installed with npm into
build/node-red (once; later runs reuse it), started on a free loopback port with a flows file made from
the same 1,000-node/1,500-link graph (one "change" node per node, its links as wires, at the same
places), and driven in the same Chromium: a cold load of the flow's address until every node and link
is drawn, and a drag of a linked node in view, 60 steps of 6 px, each step's handlers and frame.
When npm is missing or the install fails, `measure` says why and nothing is measured.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

from benchmarks import editor

VERSION = "4.1"  # npm install node-red@VERSION (the newest 4.1.x)
INSTALL_DIR = Path(__file__).resolve().parents[1] / "build" / "node-red"
TAB = "bench.tab"
SELECTORS = (".red-ui-flow-node-group", "g.red-ui-flow-link")  # a node's group, a link's group
SETTINGS = """module.exports = {
  uiHost: "127.0.0.1", flowFile: "flows.json", credentialSecret: false,
  editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
  diagnostics: { enabled: false }, telemetry: { enabled: false }, runtimeState: { enabled: false },
  logging: { console: { level: "warn" } },
};
"""


def install() -> tuple[Path | None, str]:
    """Node-RED's red.js (installing it first when needed), or None and why it cannot be had."""
    red = INSTALL_DIR / "node_modules" / "node-red" / "red.js"
    if red.exists():
        return red, ""
    if not shutil.which("npm") or not shutil.which("node"):
        return None, "npm and node are not installed"
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["npm", "install", "--prefix", str(INSTALL_DIR), "--no-audit", "--no-fund",
                               "--loglevel=error", f"node-red@{VERSION}"],
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "npm install node-red did not finish within 10 minutes"
    if done.returncode != 0 or not red.exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"npm install node-red failed ({last[0][:200]})"
    return red, ""


def flows_file(flow: dict) -> list[dict]:
    """The benchmark's graph as Node-RED flows: a tab of "change" nodes wired as the links are."""
    wires: dict[str, list[str]] = {node["id"]: [] for node in flow["nodes"]}
    for link in flow["links"]:
        wires[link["source"].split(":")[0]].append(link["target"].split(":")[0])
    nodes = [{"id": TAB, "type": "tab", "label": flow["name"]}]
    for node in flow["nodes"]:  # Node-RED places a node by its centre
        nodes.append({"id": node["id"], "type": "change", "z": TAB, "name": node["name"], "rules": [],
                      "x": node["ui"]["x"] + 100, "y": node["ui"]["y"] + 40, "wires": [wires[node["id"]]]})
    return nodes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeRed:
    """A Node-RED process on a free loopback port with the given flows, in its own user directory."""

    def __init__(self, red: Path, workdir: Path, flows: list[dict]):
        self.red, self.workdir, self.flows = red, workdir, flows
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "NodeRed":
        from tests.support.waiting import wait_until

        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "flows.json").write_text(json.dumps(self.flows))
        (self.workdir / "settings.js").write_text(SETTINGS)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.workdir / "node-red.log", "ab")
        self.proc = subprocess.Popen(["node", str(self.red), "-p", str(port), "-u", str(self.workdir),
                                      "-s", str(self.workdir / "settings.js")],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout=120)
        if self.proc.poll() is not None:
            raise RuntimeError(f"Node-RED exited with status {self.proc.returncode} (see {self.workdir}/node-red.log)")
        if not self._answers():
            raise RuntimeError("Node-RED did not answer within 120 s")
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/flows", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_drag(browser, url: str, flow: dict) -> list[dict]:
    """Drag a linked node in the first rows (in view at Node-RED's opening zoom), as editor.py does."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("([n, l, a, b]) => document.querySelectorAll(a).length === n"
                               " && document.querySelectorAll(b).length === l",
                               arg=[len(flow["nodes"]), len(flow["links"]), *SELECTORS], timeout=60_000)
        node = flow["nodes"][editor.COLUMNS + 1]  # second row, second column: links in and out
        box = page.locator(f'#red-ui-workspace-chart [id="{node["id"]}"] rect.red-ui-flow-node').bounding_box()
        steps, _ = editor.drag_from(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        moved = page.evaluate("(id) => RED.nodes.node(id).x", node["id"])
        assert moved != node["ui"]["x"] + 100, "the drag did not move the Node-RED node"
        return steps
    finally:
        context.close()


def measure(browser, flow: dict, workdir: Path) -> dict:
    """{"cold": [...], "steps": [...]} for Node-RED's editor on `flow`, or {"skipped": reason}."""
    red, reason = install()
    if red is None:
        return {"skipped": reason}
    server = NodeRed(red, workdir / "node-red", flows_file(flow))
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        server.stop()
        return {"skipped": f"Node-RED did not start: {exc}"}
    try:
        url = f"{server.url}/#flow/{TAB}"
        cold = editor.cold_loads(browser, url, flow, SELECTORS, "red/red.min.js", editor.OPEN_ROUNDS)
        return {"cold": cold, "steps": measure_drag(browser, url, flow), "version": version(red)}
    finally:
        server.stop()


def version(red: Path) -> str:
    return json.loads((red.parent / "package.json").read_text()).get("version", "?")

