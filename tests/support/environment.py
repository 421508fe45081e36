"""What the processes a test starts inherit from the developer's shell: everything but the
variables that would point the tap, a loader, Meltano, dbt or Airflow elsewhere.

A developer who followed the README has exported `TAP_TOGGL_TASKS_API_TOKEN`, perhaps
`MELTANO_DATABASE_URI` or `AIRFLOW_HOME`, and runs inside a virtualenv; none of it may change an
outcome. Every test that starts a process builds its environment here.
"""

from __future__ import annotations

import os

# The tap and its per-account copies (TAP_TOGGL_TASKS__ACME_...), loaders, Meltano, dbt, Airflow,
# and the DAG toggl_accounts (TOGGL_ACCOUNTS_FILE, TOGGL_TOKEN_...).
FOREIGN_PREFIXES = ("TAP_", "TARGET_", "MELTANO_", "DBT_", "AIRFLOW", "TOGGL_")
# Another virtualenv's packages, and the SDK's logging switches (the tests read the tap's log).
FOREIGN_NAMES = frozenset({"VIRTUAL_ENV", "PYTHONPATH", "LOGLEVEL", "SINGER_SDK_LOG_CONFIG"})


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without the foreign variables, then `extra` on top."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(FOREIGN_PREFIXES) and name not in FOREIGN_NAMES
    }
    return {**kept, **extra}
