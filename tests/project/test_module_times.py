"""scripts/test's per-module times (tests/support/module_times.py), on a small suite whose
tests' times are set by a hook rather than measured."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_each_module_s_setup_call_and_teardown_are_summed_slowest_first(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().duration = 7 if "long" in item.name else 1
        """
    )
    pytester.makepyfile(
        test_few="def test_long(): pass\n",
        test_many="def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n",
    )
    times = tmp_path / "times.tsv"

    result = pytester.runpytest("-p", "tests.support.module_times", f"--module-times={times}")

    result.assert_outcomes(passed=4)
    # 3 phases of 7 s; 3 tests of 3 phases of 1 s.
    assert times.read_text() == "test_few.py\t21\ntest_many.py\t9\n"
