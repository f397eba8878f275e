#!/bin/sh
# Start the PyFlow server in its container: pick the executor, own the data volume, drop root, serve.
#   PYFLOW_EXECUTOR   docker | sandbox | unsafe-process (default: docker when /var/run/docker.sock is
#                     mounted, else sandbox)
# Extra arguments go to `pyflow serve` (for example --concurrency 4).
set -eu
SOCKET=/var/run/docker.sock
DATA=$(dirname "${PYFLOW_DB:-/data/pyflow.db}")

if [ -z "${PYFLOW_EXECUTOR:-}" ]; then
    if [ -S "$SOCKET" ]; then PYFLOW_EXECUTOR=docker; else PYFLOW_EXECUTOR=sandbox; fi
fi
export PYFLOW_EXECUTOR
echo "pyflow container: executor $PYFLOW_EXECUTOR" >&2
# The sandbox needs bubblewrap to make namespaces and mount a fresh /proc, which Docker's defaults
# (seccomp profile, masked /proc paths) forbid. Say how to run instead of failing obscurely.
if [ "$PYFLOW_EXECUTOR" = sandbox ] && ! bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc \
        --dev /dev true 2>/dev/null; then
    cat >&2 <<'MSG'
pyflow container: cannot start: the sandbox executor (bubblewrap) cannot create its namespaces in this
container, and no Docker socket is mounted. Run the image in one of these ways (docker/README.md):
  docker executor, nodes in sibling containers on the host's engine (recommended):
    docker run -p 5000:5000 -v pyflow-data:/data -v /var/run/docker.sock:/var/run/docker.sock pyflow
  sandbox executor inside this container (loosens this container's own seccomp and /proc masking):
    docker run -p 5000:5000 -v pyflow-data:/data --security-opt seccomp=unconfined \
        --security-opt systempaths=unconfined pyflow
MSG
    exit 2
fi

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
