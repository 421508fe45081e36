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
),

-- Each time the tap listed every task Toggl has, it wrote a tasks_listings row, and every task
-- it listed carries that listing's table version (or a newer one). A row older than the newest
-- listing was not in it: the task was deleted in Toggl, before the first listing that missed
-- it began. This is ACTIVATE_VERSION applied here, for loaders that ignore it (target-duckdb).
listings as (
    select table_version, cast(began_at as timestamp) as began_at
    from {{ source('toggl', 'tasks_listings') }}
),

latest as (
    select
        versions.*,
        -- (false when there is no listing yet: nothing is known to be missing)
        coalesce(
            coalesce(_sdc_table_version, 0) < (select max(table_version) from listings), false
        ) as unlisted,
        (
            select min(listings.began_at)
            from listings
            where listings.table_version > coalesce(versions._sdc_table_version, 0)
        ) as first_missed_at
    from versions
    where newest_first = 1
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
        when server_deleted_at is not null or unlisted then 'deleted'
        when active is false then 'done'
        else 'open'
    end as status,
    active is false as is_done,
    server_deleted_at is not null or unlisted as is_deleted,
    -- tracked_seconds is in milliseconds, despite its name (Toggl's own field note).
    cast(tracked_seconds as double precision) / 3600000 as hours_tracked,
    cast(estimated_seconds as double precision) / 3600 as hours_estimated,
    -- Both loaders store UTC in timestamps without a zone; the cast pins the type on both.
    cast(at as timestamp) as changed_at,
    case
        when server_deleted_at is not null then cast(server_deleted_at as timestamp)
        when unlisted then first_missed_at
    end as deleted_at,
    cast(rate_last_updated as timestamp) as rate_last_updated_at,
    rate,
    recurring as is_recurring,
    project_billable as is_billable,
    due_date,
    cast(_sdc_batched_at as timestamp) as loaded_at
from latest
