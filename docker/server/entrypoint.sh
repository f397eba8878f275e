#!/bin/sh
# Start the PyFlow server in its container: pick the executor, own the data volume, drop root, serve.
#   PYFLOW_EXECUTOR   docker | sandbox | unsafe-process | none. Unset, the first that can work here:
#                     docker when the engine's socket is mounted at /var/run/docker.sock; else sandbox
#                     when bubblewrap can make its namespaces (under the security options in
#                     docker/README.md); else none: the editor, the API, the repository and run history
#                     are served but no node runs, and the log and the editor say how to enable it.
#                     An executor chosen here that cannot start ends the container with status 2.
# Extra arguments go to `pyflow serve` (for example --concurrency 4).
# PyFlow never runs node code without isolation: "none" runs no node code at all.
set -eu
SOCKET=/var/run/docker.sock
DATA=$(dirname "${PYFLOW_DB:-/data/pyflow.db}")
ENABLE='  docker executor, nodes in sibling containers on the host'"'"'s engine (recommended):
    docker run -p 5000:5000 -v pyflow-data:/data -v /var/run/docker.sock:/var/run/docker.sock pyflow
  sandbox executor inside this container (loosens this container'"'"'s own seccomp and /proc masking):
    docker run -p 5000:5000 -v pyflow-data:/data --security-opt seccomp=unconfined \
        --security-opt systempaths=unconfined pyflow'
REASON='node execution is disabled in this container (executor none): no Docker socket is mounted and the
sandbox cannot create its namespaces here. To run nodes, restart the container with
-v /var/run/docker.sock:/var/run/docker.sock (docker executor) or with --security-opt seccomp=unconfined
--security-opt systempaths=unconfined (sandbox executor); see docker/README.md.'

# The sandbox needs bubblewrap to make namespaces and mount a fresh /proc, which Docker's defaults
# (seccomp profile, masked /proc paths) forbid: try exactly that before choosing it.
sandbox_works() {
    bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev true 2>/dev/null
}

refuse() {
    printf 'pyflow container: cannot start: %s\nRun the image in one of these ways (docker/README.md):\n%s\n' \
        "$1" "$ENABLE" >&2
    exit 2
}

warn_disabled() {
    cat >&2 <<MSG
pyflow container: ================================ WARNING ================================
pyflow container: NODE EXECUTION IS DISABLED (executor none). The editor, the REST API, the repository
pyflow container: and run history are served, but every node run fails: no Docker socket is mounted,
pyflow container: and the sandbox (bubblewrap) cannot create its namespaces in this container.
pyflow container: To run nodes, start the container in one of these ways (docker/README.md):
$ENABLE
pyflow container: ===========================================================================
MSG
}

if [ -z "${PYFLOW_EXECUTOR:-}" ]; then
    if [ -S "$SOCKET" ]; then PYFLOW_EXECUTOR=docker
    elif sandbox_works; then PYFLOW_EXECUTOR=sandbox
    else
        PYFLOW_EXECUTOR=none
        warn_disabled
        set -- --executor-option "reason=$(printf '%s' "$REASON" | tr '\n' ' ')" "$@"
    fi
elif [ "$PYFLOW_EXECUTOR" = sandbox ] && ! sandbox_works; then
    refuse "PYFLOW_EXECUTOR=sandbox, but bubblewrap cannot create its namespaces in this container."
elif [ "$PYFLOW_EXECUTOR" = docker ] && [ ! -S "$SOCKET" ] && [ -z "${DOCKER_HOST:-}" ]; then
    refuse "PYFLOW_EXECUTOR=docker, but no Docker socket is mounted at $SOCKET and DOCKER_HOST is unset."
fi
export PYFLOW_EXECUTOR
echo "pyflow container: executor $PYFLOW_EXECUTOR" >&2

run_as=""
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$DATA"
    chown pyflow:pyflow "$DATA"
    groups=10002
    # The docker executor talks to the engine through the mounted socket: join the socket's group.
    if [ "$PYFLOW_EXECUTOR" = docker ] && [ -S "$SOCKET" ]; then groups="$groups,$(stat -c %g "$SOCKET")"; fi
    run_as="setpriv --reuid=10002 --regid=10002 --groups=$groups --inh-caps=-all --"
fi
exec $run_as pyflow serve --host 0.0.0.0 --port "${PYFLOW_PORT:-5000}" --executor "$PYFLOW_EXECUTOR" "$@"
