"""Request helpers of the blueprints: If-Match as werkzeug parses it."""

import pytest
from flask import Flask

from pyflow.model.errors import PreconditionFailed
from pyflow.server.http import if_match

APP = Flask(__name__)


def revision(header):
    headers = {} if header is None else {"If-Match": header}
    with APP.test_request_context("/", headers=headers):
        return if_match()


@pytest.mark.parametrize("header, expected", [('"12"', 12), ('W/"3"', 3), (None, None), ("*", None)])
def test_if_match_names_a_revision(header, expected):
    assert revision(header) == expected


@pytest.mark.parametrize("header", ['"abc"', "nonsense", '"1", "2"', '"-4"', '""', "W/"])
def test_if_match_naming_no_revision_fails_the_precondition(header):
    with pytest.raises(PreconditionFailed, match="names no revision"):
        revision(header)
