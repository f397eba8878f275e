"""A worker's artifact places on the host: what is emptied before each run."""

from __future__ import annotations

from pyflow.executors.artifacts import Places


def test_the_output_place_is_emptied_before_every_run_and_the_input_place_once_inputs_were_linked(tmp_path):
    """Node code can write into its output place in any run, so it is emptied every time; only the host
    writes into the input place (sandboxes and containers see it read-only), so it is emptied only after
    input artifacts were linked there, and a place already empty costs no listing."""
    places = Places(tmp_path, "/run/pyflow/in", "/run/pyflow/out")
    places.host_in.mkdir()
    places.host_out.mkdir()
    (places.host_out / "left-by-a-node").write_text("x")
    (places.host_in / "linked-input").write_text("x")
    places.empty()
    assert list(places.host_out.iterdir()) == [] and list(places.host_in.iterdir()) == []
    assert places.inputs_linked is False

    (places.host_out / "again").write_text("x")
    (places.host_in / "not-the-hosts").write_text("x")  # cannot happen: shows the place is not listed
    places.empty()
    assert list(places.host_out.iterdir()) == []
    assert [p.name for p in places.host_in.iterdir()] == ["not-the-hosts"]

    places.inputs_linked = True
    places.empty()
    assert list(places.host_in.iterdir()) == []
