"""meltanolabs-target-postgres, committing the rows before each STATE and passing it on at once.

Meltano stores the STATE messages its loader writes, as they come; a run that dies resumes from
the last one stored. The Singer SDK's targets (0.54) write the tap's latest STATE only when they
drain every sink: at the end of their input, or every 5 minutes (`_MAX_RECORD_AGE_IN_MINUTES`, not
a setting). A full sink (`batch_size_rows`) is drained alone, without its STATE. So a run killed
within its first 5 minutes resumes at its start, whatever it had loaded.

This tap writes a STATE after each page whose tasks it has all written: here each new STATE drains
(commits) every sink, then goes on to Meltano. A run killed mid-sync resumes after its last
committed page (docs/many-machines.md), at the cost of one commit per page (1,000 tasks).
"""

from __future__ import annotations

from typing import Any

from target_postgres.target import TargetPostgres


class TargetPostgresPages(TargetPostgres):
    """target-postgres (same name, settings and tables), draining at every new STATE."""

    # The SDK's own hook for STATE messages (private: tests/pipelines/test_celery.py fails
    # should an SDK upgrade stop calling it, as the retry would start at offset 0 again).
    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        before = self._latest_state
        super()._process_state_message(message_dict)
        if self._latest_state != before:
            self.drain_all()
