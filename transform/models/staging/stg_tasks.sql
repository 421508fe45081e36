-- One row per Toggl task, in plain units. The loaders here upsert on id, but an append-only
-- loader keeps every version of a task: keep the latest, so no model counts a task twice.
with versions as (
    select
        *,
        row_number() over (
            partition by id
            order by at desc, _sdc_batched_at desc
        ) as newest_first
    from {{ source('toggl', 'tasks') }}
)

select
    id as task_id,
    name as task_name,
    workspace_id,
    project_id,
    project_name,
    client_id,
    client_name,
    user_id,
    user_name,
    case
        when server_deleted_at is not null then 'deleted'
        when active is false then 'done'
        else 'open'
    end as status,
    active is false as is_done,
    server_deleted_at is not null as is_deleted,
    -- tracked_seconds is in milliseconds, despite its name (Toggl's own field note).
    cast(tracked_seconds as double precision) / 3600000 as hours_tracked,
    cast(estimated_seconds as double precision) / 3600 as hours_estimated,
    -- Both loaders store UTC in timestamps without a zone; the cast pins the type on both.
    cast(at as timestamp) as changed_at,
    cast(server_deleted_at as timestamp) as deleted_at,
    cast(rate_last_updated as timestamp) as rate_last_updated_at,
    rate,
    recurring as is_recurring,
    project_billable as is_billable,
    due_date,
    cast(_sdc_batched_at as timestamp) as loaded_at
from versions
where newest_first = 1
