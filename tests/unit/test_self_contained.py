"""The suites read nothing beside the checkout (see tests/conftest.py)."""

import os
import tempfile

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(os.path.abspath(tempfile.gettempdir()) in (str(ROOT.parent), os.sep),
                    reason="the checkout lies right in the temporary directory, whose files tests may open")
def test_a_file_beside_the_checkout_cannot_be_opened():
    with pytest.raises(PermissionError, match="outside the checkout"):
        open(ROOT.parent / "shared" / "compat" / "pyflow-repo.json")


def test_files_in_the_checkout_open_as_usual():
    with open(ROOT / "tests" / "fixtures" / "original" / "pyflow-repo.json") as fh:
        assert fh.read(1) == "{"
