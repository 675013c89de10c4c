"""Transformations: the bundled dbt project and the in-process runner that builds it."""
