"""Hypothesis settings of the hostile-input tests.

CI runs each fuzz test on a small, derandomised budget (deterministic, about a minute in all). A longer run draws
LEANFORMERS_FUZZ_EXAMPLES examples per test from the seed given to Hypothesis:

    LEANFORMERS_FUZZ_EXAMPLES=10000 pytest -m fuzz tests/hostile --hypothesis-seed=1
"""

import os
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches (Unicode tables, constants) on disk: in the temporary folder, not in the checkout
set_hypothesis_home_dir(os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
                        or os.path.join(tempfile.gettempdir(), "leanformers-hypothesis"))

_LONG = os.environ.get("LEANFORMERS_FUZZ_EXAMPLES")
settings.register_profile(
    "leanformers-fuzz",
    max_examples=int(_LONG) if _LONG else 40,
    derandomize=not _LONG,  # CI: the same examples on every run; a long run follows --hypothesis-seed
    deadline=None,  # each step is timed by the tests themselves (fuzzing.STEP_SECONDS), with a clearer message
    database=None,  # nothing written outside the test's folders
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example],
)
settings.load_profile("leanformers-fuzz")


def pytest_terminal_summary(terminalreporter):
    """How many hostile inputs each target took (the count a long run reports)."""
    from hostile.fuzzing import COUNTS

    if COUNTS:
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(COUNTS.items()))
        terminalreporter.write_line(f"hostile inputs tried: {sum(COUNTS.values())} ({counts})")
