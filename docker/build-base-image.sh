#!/bin/sh
# Build the node base image without any registry: a minimal Debian bookworm tree from Debian's archive
# (debootstrap --variant=minbase with python3-minimal), imported into the local engine as one layer.
#   usage: docker/build-base-image.sh [IMAGE] [MIRROR]
set -eu
IMAGE=${1:-${PYFLOW_BASE_IMAGE:-pyflow-base:bookworm}}
MIRROR=${2:-${DEBIAN_MIRROR:-http://deb.debian.org/debian}}
ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/pyflow-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

echo "debootstrap: bookworm minbase + python3-minimal into $ROOTFS" >&2
debootstrap --variant=minbase --include=python3-minimal bookworm "$ROOTFS" "$MIRROR" >&2
# Keep the image small: package caches and lists are not needed to run it.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
# mktemp -d made the directory 0700; it becomes the image's "/", which every user must be able to enter.
chmod 0755 "$ROOTFS"
echo "importing as $IMAGE" >&2
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/sh"]' - "$IMAGE" >&2
echo "$IMAGE"
