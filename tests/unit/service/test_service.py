"""The service as the one way in to runs: history, cancellation, deletion and events, with the HTTP
status each refusal carries."""

import pytest

from pyflow.model.errors import Conflict, InvalidInput, NotFound
from tests.unit.service.support import finished, gated, make_service, single


@pytest.fixture
def service(tmp_path):
    service = make_service(tmp_path)
    yield service
    service.close()


@pytest.mark.parametrize("call", ["cancel_run", "delete_run", "get_run"])
def test_an_unknown_run_answers_404(service, call):
    with pytest.raises(NotFound) as caught:
        getattr(service, call)("no-such-run")
    assert caught.value.status == 404


def test_an_unknown_status_filter_answers_400_naming_the_statuses(service):
    with pytest.raises(InvalidInput) as caught:
        service.list_runs(status="sideways")
    assert caught.value.status == 400
    assert caught.value.details[0]["path"] == "/status" and "succeeded" in caught.value.details[0]["message"]


def test_runs_list_newest_first_with_the_total(service):
    ids = [service.start_run(flow=single("t.text", n=i))["id"] for i in range(3)]
    for run_id in ids:
        finished(service, run_id)
    runs, total = service.list_runs(limit=2)
    assert total == 3 and [r["id"] for r in runs] == ids[:0:-1]
    assert service.list_runs(status="failed") == ([], 0)


def test_a_live_run_is_cancelled_and_still_ending_then_deleted(service, tmp_path):
    run_id = service.start_run(flow=gated(tmp_path / "never"))["id"]
    with pytest.raises(Conflict):
        service.delete_run(run_id)  # live: cancel it first
    run, ending = service.cancel_run(run_id)
    assert run["id"] == run_id
    assert finished(service, run_id)["status"] == "cancelled"
    again, ending = service.cancel_run(run_id)
    assert (again["status"], ending) == ("cancelled", False)
    service.delete_run(run_id)
    with pytest.raises(NotFound):
        service.get_run(run_id)


def test_a_finished_runs_events_replay_through_the_service(service):
    run_id = service.start_run(flow=single("t.text", n=2))["id"]
    finished(service, run_id)
    assert service.listen(run_id, lambda: None) is None  # not live: replayed from storage
    kinds = [event["event"] for batch in service.stream(run_id) for event in batch]
    assert kinds[0] == "run_queued" and kinds[-1] == "run_finished" and "node_finished" in kinds


def test_the_stream_of_an_unknown_run_answers_404_at_its_first_batch(service):
    events = service.stream("no-such-run")
    with pytest.raises(NotFound):
        next(events)


def test_a_stored_nodespec_is_tested_by_id_and_an_unknown_one_answers_404(service):
    result = service.test_stored_nodespec("t.text", {"n": 3})
    assert (result["status"], result["outputs"]) == ("success", {"out": "xxx"})
    with pytest.raises(NotFound):
        service.test_stored_nodespec("no.such.spec")
