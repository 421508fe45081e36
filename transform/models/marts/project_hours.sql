-- Where the hours went: one row per Toggl project. Deleted tasks are left out.
with tasks as (
    select *
    from {{ ref('stg_tasks') }}
    where not is_deleted and project_id is not null
),

-- Every task carries its project's name as it was when the task last changed. Name each project
-- after its most recently changed task, so a renamed project stays one row.
project_names as (
    select
        project_id,
        workspace_id,
        project_name,
        client_name,
        row_number() over (
            partition by project_id
            order by changed_at desc, task_id desc
        ) as newest_first
    from tasks
),

totals as (
    select
        project_id,
        count(*) as tasks,
        count(*) filter (where not is_done) as open_tasks,
        count(*) filter (where is_done) as done_tasks,
        coalesce(sum(hours_tracked), 0) as hours_tracked,
        coalesce(sum(hours_estimated), 0) as hours_estimated,
        max(changed_at) as last_changed_at
    from tasks
    group by project_id
)

select
    names.workspace_id,
    totals.project_id,
    names.project_name,
    names.client_name,
    totals.open_tasks,
    totals.done_tasks,
    totals.tasks,
    totals.hours_tracked,
    totals.hours_estimated,
    totals.last_changed_at
from totals
inner join project_names as names
    on names.project_id = totals.project_id and names.newest_first = 1
