# The dask executor (src/pyflow/executors/dask): `make test-dask` runs its own tests on a LocalCluster of two
# worker processes on loopback (tests/dask), then the executor contract, the server's run tests and the
# hostile-code suite against it (as test-docker does for Docker). No Docker engine is needed.
.PHONY: test-dask

test-dask: system-deps venv
	@status=0; \
	$(PY) -m pytest tests/dask -q -p no:cacheprovider || status=1; \
	PYFLOW_HOSTILE_EXECUTORS=dask $(PY) -m pytest tests/unit/executors/test_contract.py -k dask -q -p no:cacheprovider || status=1; \
	PYFLOW_TEST_EXECUTOR=dask $(PY) -m pytest tests/unit/server/test_runs.py -q -p no:cacheprovider || status=1; \
	PYFLOW_HOSTILE_EXECUTORS=dask $(PY) -m pytest tests/hostile -q -p no:cacheprovider || status=1; \
	exit $$status
