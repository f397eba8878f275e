"""A local wheelhouse of throwaway packages, served on 127.0.0.1, and stores that install from it."""

from __future__ import annotations

import pytest

from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
from tests.support.wheels import Wheelhouse, make_sdist, make_wheel

MARKER_NAME = "sdist-setup-ran"


def fill_wheelhouse(folder, marker) -> None:
    make_wheel(folder, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 1\n"})
    make_wheel(folder, "tinypkg", "2.0", {"tinypkg/__init__.py": "from tinydep import X\nVALUE = 2\nDEP = X\n"},
               requires=["tinydep>=0.5"])
    make_wheel(folder, "tinydep", "0.5", {"tinydep/__init__.py": "X = 5\n"})
    make_wheel(folder, "otherpkg", "3.1", {"otherpkg.py": "NAME = 'other'\n"})
    make_wheel(folder, "conflicting", "1.0", {"conflicting/__init__.py": ""}, requires=["tinypkg==1.0"])
    # Only a source distribution: its setup.py would leave a marker if anything ran it on the host.
    make_sdist(folder, "sdistonly", "1.0", f"open({str(marker)!r}, 'w').write('ran')\n")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheelhouse")
    marker = root / MARKER_NAME
    fill_wheelhouse(root / "files", marker)
    with Wheelhouse(root / "files") as house:
        house.marker = marker
        yield house


def store_for(tmp_path, house, **settings) -> EnvironmentStore:
    index = IndexSettings(find_links=(house.url,), no_index=True)
    return EnvironmentStore(EnvironmentSettings(tmp_path / "envs", index, **settings))


@pytest.fixture
def store(tmp_path, wheelhouse) -> EnvironmentStore:
    return store_for(tmp_path, wheelhouse)
