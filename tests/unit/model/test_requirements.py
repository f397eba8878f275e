"""Requirement strings: normalized once, URLs/paths/options refused naming the entry, and suggestions from
a function's imports."""

from __future__ import annotations

import pytest

from pyflow.model.errors import InvalidInput
from pyflow.model.nodespec import check_nodespec, parse_nodespec
from pyflow.model.requirements import normalize_requirements, suggested_requirements
from pyflow.model.signature import infer_ports, nodespec_from_source


def test_requirements_are_normalized_sorted_and_deduplicated():
    assert normalize_requirements(["Pandas >= 2.0", "numpy", "NumPy", "scikit_learn[All]<2,>=1.3"]) == (
        "numpy", "pandas>=2.0", "scikit-learn[all]<2,>=1.3")
    assert normalize_requirements(['tomli; python_version < "3.11"']) == ('tomli; python_version < "3.11"',)


@pytest.mark.parametrize("entry", ["-e .", "--index-url=https://evil.example/simple", "./pkg", "/abs/path.whl",
                                   "pkg @ https://example.com/pkg.whl", "git+https://example.com/x.git",
                                   "file:///tmp/x.whl", "~/x", "pkg==", "two words", ""])
def test_urls_paths_options_and_garbage_are_refused_naming_the_entry(entry):
    with pytest.raises(InvalidInput) as refused:
        normalize_requirements(["numpy", entry])
    assert [d["path"] for d in refused.value.details] == ["/requirements/1"]


def test_a_nodespec_with_a_bad_requirement_is_invalid_and_a_good_one_is_parsed_normalized():
    doc = {"id": "x", "title": "x", "port": {"input": [], "output": [{"name": "out"}]},
           "func": "def func():\n    return 1\n", "requirements": ["NumPy>=1.26", "x @ http://h/x"]}
    assert [p["path"] for p in check_nodespec(doc)] == ["/requirements/1"]
    assert parse_nodespec({**doc, "requirements": ["NumPy>=1.26"]}).requirements == ("numpy>=1.26",)


def test_suggestions_name_distributions_not_import_names_and_skip_the_standard_library():
    source = ("import os, json\nimport numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
              "from PIL import Image\nimport yaml\nfrom . import sibling\nimport pyflow\n"
              "def func(x):\n    import pandas\n    from dateutil import parser\n    return x\n")
    assert suggested_requirements(source) == ["numpy", "scikit-learn", "pillow", "pyyaml", "pandas",
                                              "python-dateutil"]
    assert infer_ports(source)["requirements"] == suggested_requirements(source)


def test_a_nodespec_from_a_file_keeps_its_module_imports_and_suggests_requirements():
    source = "import numpy as np\nimport math\n\ndef mean(values: list) -> float:\n    return float(np.mean(values))\n"
    spec = nodespec_from_source(source)
    assert spec["func"].startswith("import numpy as np\nimport math\n\ndef func(values: list)")
    assert spec["requirements"] == ["numpy"]
    assert check_nodespec(spec) == []
