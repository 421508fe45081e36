"""Pipelines: real Meltano, real loaders, PostgreSQL, dbt and Airflow (all marked slow).

Their helpers are in tests/support/.
"""
