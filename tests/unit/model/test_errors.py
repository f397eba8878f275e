"""The one error body: raised domain errors and the server's own refusals share its shape."""

from pyflow.model.errors import Conflict, detail, error_body


def test_a_domain_error_and_a_plain_refusal_have_the_same_body():
    raised = Conflict("taken", [detail("/id", "in use")], flows=["f"]).to_dict()
    assert raised == error_body("taken", [detail("/id", "in use")], flows=["f"])
    assert raised == {"error": "taken", "details": [{"path": "/id", "message": "in use"}], "flows": ["f"]}
    assert error_body("no") == {"error": "no", "details": []}
