{% test non_negative(model, column_name) %}
-- Hours and counts below zero mean a unit or sign went wrong on the way in.
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0
{% endtest %}
