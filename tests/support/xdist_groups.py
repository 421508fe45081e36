"""A pytest plugin (pyproject.toml's addopts): the `xdist_group` marks kept under pytest 9.

With `--dist loadgroup`, pytest-xdist sends the tests of one group to one worker: each slow module
(pytestmark `xdist_group(__name__)`) runs start to end on one worker, with its module fixtures;
the README walk's sections, which build on each other in one clone, depend on it. pytest-xdist
3.8 marks a test's group by rewriting `item._nodeid`, which pytest 9 no longer reads (the id lives
in `item._id`), so the marks are silently ignored and a module's tests scatter over the workers.
This does what pytest-xdist meant, unless it already did.
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Set on pytest-xdist's workers when the controller runs --dist loadgroup.
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(names))
        if not names or item.nodeid.endswith(suffix):
            continue
        item._id = NodeId.parse(item.nodeid + suffix)  # private: see the module's docstring
        if not item.nodeid.endswith(suffix):
            pytest.exit(f"tests/support/xdist_groups.py cannot set the group of {item.nodeid}", 3)
