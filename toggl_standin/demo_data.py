"""Tasks the stand-in serves: `make_task` for tests (the same every time for an id) and
`demo_tasks`, varied tasks in every shape Toggl is known to send, for the demo and benchmarks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any


def format_at(moment: datetime) -> str:
    """Toggl's own form of `at`: UTC, microseconds, `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_PROJECT_FIELDS = (
    "workspace_id",
    "project_id",
    "project_name",
    "project_color",
    "project_billable",
    "project_is_private",
    "client_id",
    "client_name",
)
_PROJECTS = tuple(
    dict(zip(_PROJECT_FIELDS, project, strict=True))
    for project in (
        (4_100_001, 201_001, "Website relaunch", "#2da608", True, False, 301, "Acme Corp"),
        (4_100_001, 201_002, "Internal tooling", "#06aaf5", False, True, None, None),
        (4_100_002, 201_003, "Mobile app", "#c9806b", True, False, 302, "Globex GmbH"),
        (4_100_002, 201_004, "Søknad & support", "#9e5bd9", True, False, 303, "Nordlys AS"),
        (4_100_003, 201_005, "研究 (research)", "#d94182", False, False, 304, "東京ラボ"),
        (4_100_003, 201_006, 'The "big" migration', "#525266", True, True, 301, "Acme Corp"),
    )
)
# (user_id, toggl_accounts_id, user_name)
_USERS = ((9_001, "a1c4e5f0b2", "Ada Lovelace"), (9_002, "b7d2f9a4c1", "Grace Hopper"))
_MAKE_TASK_START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def make_task(task_id: int, **overrides: Any) -> dict[str, Any]:
    """A full, realistic task, the same every time for the same id; overrides replace or add."""
    user_id, accounts_id, user_name = _USERS[task_id % 2]
    # A week apart, so a start_date or since in 2024 splits a small fixture into before/after.
    at = _MAKE_TASK_START + timedelta(
        weeks=task_id, seconds=task_id, microseconds=task_id * 34_497 % 1_000_000
    )
    task: dict[str, Any] = {
        "id": task_id,
        "name": f"Task {task_id}",
        "active": True,
        "at": format_at(at),
        **_PROJECTS[task_id % 3],
        "user_id": user_id,
        "toggl_accounts_id": accounts_id,
        "user_name": user_name,
        "avatar_url": f"https://assets.track.toggl.com/avatars/{accounts_id}.png",
        "estimated_seconds": 3600 * (task_id % 4 + 1),
        "tracked_seconds": 90_000 * task_id,  # milliseconds, as Toggl sends them
        "rate": 85.0,
        "rate_last_updated": None,
        "recurring": False,
        # Both documented forms are live: every fixture meets the 2024 string and the 2026 list.
        "permissions": "owner" if task_id % 2 else ["owner"],
        "integration_ext_id": None,
        "integration_ext_type": None,
        "integration_provider": None,
        "due_date": None,
        "external_reference": None,
        "server_deleted_at": None,
    }
    task.update(overrides)
    return task


_DEMO_NAMES = (
    'Café ☕ "launch" prep',
    "Quarterly report",
    "Überprüfung der Verträge",
    "O'Brien's onboarding",
    "Fix <script> & ampersand escaping",
    "日本語ドキュメントの翻訳",
    "Emoji 🚀 rollout",
    "Backlog grooming",
    "Invoice run",
    "Design review",
)
_PROVIDERS = (("jira", "issue", "PROJ-"), ("asana", "task", "12040"), ("salesforce", "case", "500"))


def demo_tasks(count: int, seed: int = 7, *, unknown_field: bool = True) -> list[dict[str, Any]]:
    """Varied tasks over the past two years, in every shape Toggl is known to send.

    With `unknown_field`, some carry a field no schema knows (`color_hint`), which the tap drops
    with a warning: tests want it, the demo (`python -m toggl_standin`) does not show it."""
    rng = random.Random(seed)  # demo data, reproducible on purpose
    now = datetime.now(UTC)
    tasks = []
    for task_id in range(1, count + 1):
        moment = now - timedelta(seconds=rng.uniform(60, 2 * 365 * 86_400))
        form = rng.random()
        if form < 0.7:
            at = format_at(moment)
        elif form < 0.9:
            at = moment.isoformat()  # "+00:00", as Toggl writes its other timestamps
        else:
            at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assigned = rng.random() < 0.85
        user_id, accounts_id, user_name = rng.choice(_USERS)
        task = make_task(
            task_id,
            name=f"{rng.choice(_DEMO_NAMES)} #{task_id}",
            active=rng.random() < 0.8,
            at=at,
            **rng.choice(_PROJECTS),
            user_id=user_id if assigned else None,
            toggl_accounts_id=accounts_id if assigned else None,
            user_name=user_name if assigned else None,
            avatar_url=None,
            estimated_seconds=rng.choice((None, 1800, 3600, 7200, 28_800)),
            tracked_seconds=rng.randrange(0, 40 * 3_600_000, 1000),
            rate=rng.choice((0.0, 60.0, 85.5, 120.0)),
            rate_last_updated=rng.choice((None, format_at(now - timedelta(days=400)))),
            recurring=rng.random() < 0.1,
            permissions=rng.choice(("owner", ["owner"], ["edit", "view"])),
            due_date=rng.choice((None, None, (now + timedelta(days=30)).strftime("%Y-%m-%d"))),
        )
        if rng.random() < 0.15:
            provider, kind, prefix = rng.choice(_PROVIDERS)
            task.update(
                integration_provider=provider,
                integration_ext_type=kind,
                integration_ext_id=f"{prefix}{rng.randrange(100, 9999)}",
                external_reference=f"https://{provider}.example.com/{prefix}{task_id}",
            )
        if rng.random() < 0.05 and unknown_field:  # drawn either way: the same tasks follow
            task["color_hint"] = "x"  # a field no schema knows yet
        tasks.append(task)
    return tasks
