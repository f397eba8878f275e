#!/bin/sh
# Build PyFlow's images on the local engine, without any registry.
#   docker/images.sh base      the debootstrap base image, when missing (about 30 s from Debian's archive)
#   docker/images.sh runtime   the node runtime image, when missing or when its recipe or base changed
#   docker/images.sh server    the server image (always rebuilt; the engine's layer cache keeps it quick)
# Image names: $PYFLOW_BASE_IMAGE, $PYFLOW_DOCKER_IMAGE, $PYFLOW_SERVER_IMAGE.
# Builds use the host's network (--network host): engines started with --iptables=false give the
# default bridge no route out, and only the build steps (apt, pip) need one. Node containers never do.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BASE=${PYFLOW_BASE_IMAGE:-pyflow-base:bookworm}
RUNTIME=${PYFLOW_DOCKER_IMAGE:-pyflow-runtime:bookworm}
SERVER=${PYFLOW_SERVER_IMAGE:-pyflow:latest}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
label_of() { docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

base() {
    if [ -n "$(image_id "$BASE")" ]; then echo "base image $BASE: present"; return; fi
    "$HERE/build-base-image.sh" "$BASE"
}

runtime() {
    base
    recipe=$( (cat "$HERE/runtime/Dockerfile"; image_id "$BASE") | sha256sum | cut -c1-16)
    if [ "$(label_of "$RUNTIME" org.pyflow.recipe)" = "$recipe" ]; then
        echo "runtime image $RUNTIME: up to date"; return
    fi
    echo "building runtime image $RUNTIME FROM $BASE"
    docker build -q --force-rm --network host --build-arg "BASE=$BASE" --label "org.pyflow.recipe=$recipe" \
        -t "$RUNTIME" "$HERE/runtime"
}

server() {
    base
    context=$(mktemp -d "${TMPDIR:-/tmp}/pyflow-server-context.XXXXXX")
    trap 'rm -rf "$context"' EXIT INT TERM
    # A clean build context: the package, the standard library and the built editor; no venv, no
    # node_modules, no databases.
    (cd "$ROOT" && tar -c --mode='a+rX,go-w' --exclude=node_modules --exclude=__pycache__ --exclude='*.egg-info' \
        --exclude='*.db' pyproject.toml $(ls README* 2>/dev/null) src repository docker/server) \
        | tar -x -C "$context"
    # pip inside the build trusts what the host's pip trusts ($PIP_CERT, else $SSL_CERT_FILE): needed
    # behind a TLS-inspecting proxy. An empty file means the image's own CA bundle.
    ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
    if [ -n "$ca" ] && [ -f "$ca" ]; then cp "$ca" "$context/docker/server/build-ca.crt"
    else : >"$context/docker/server/build-ca.crt"; fi
    echo "building server image $SERVER FROM $BASE"
    docker build -q --force-rm --network host --build-arg "BASE=$BASE" -f "$context/docker/server/Dockerfile" \
        -t "$SERVER" "$context"
}

for what in "$@"; do
    case "$what" in
        base) base ;;
        runtime) runtime ;;
        server) server ;;
        *) echo "usage: images.sh base|runtime|server ..." >&2; exit 2 ;;
    esac
done
