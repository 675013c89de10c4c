"""Role-based access on PostgreSQL: three group roles and what each may read and write.

    role                 reads                                 writes (and creates tables in)
    lakebox_engineer     raw, staging, analytics, ml, ops      raw, staging, analytics, ml, ops
    lakebox_scientist    staging, analytics, ml                ml
    lakebox_analyst      analytics                             -

The roles are NOLOGIN groups: grant one to a login user (`grant lakebox_analyst to alice`).
Grants cover the schemas, the tables in them now, and, through default privileges, the
tables the user running `lakebox grants` creates later (the pipelines and dbt, when they
connect as that user). Everything is idempotent: run it after every deploy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.errors import ConfigError

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.warehouse.base import Warehouse

READ = "select"
WRITE = "select, insert, update, delete, truncate"

# role -> (schemas it reads, schemas it writes); writing implies reading and creating tables.
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lakebox_engineer": ((), ("raw", "staging", "analytics", "ml", "ops")),
    "lakebox_scientist": (("staging", "analytics"), ("ml",)),
    "lakebox_analyst": (("analytics",), ()),
}


def apply_grants(settings: Settings) -> list[str]:
    """Create the roles and grant them their schemas, in one transaction; returns what was
    done, one line per step, for the CLI to print."""
    from lakebox.settings import redact
    from lakebox.warehouse.kinds import kind_of

    kind = kind_of(settings)
    if not kind.has_roles:
        raise ConfigError(
            f"lakebox grants: the warehouse is {kind.label} ({redact(settings.warehouse)}), which has no roles or grants; "
            "role-based access needs PostgreSQL: set LAKEBOX_WAREHOUSE=postgresql://user@host:5432/db"
        )
    from lakebox.warehouse import open_warehouse
    from lakebox.warehouse.ddl import hold_ddl_lock

    lines = []
    with open_warehouse(settings) as warehouse:
        where = warehouse.describe()
        with warehouse.transaction():
            hold_ddl_lock(warehouse)  # concurrent GRANTs on one object fail with "tuple concurrently updated"
            for role in ROLES:
                created = _ensure_role(warehouse, role)
                lines.append(f"role {role}: {'created' if created else 'exists'} (NOLOGIN group)")
            for role, (reads, writes) in ROLES.items():
                for statement in grant_statements(role, reads, writes):
                    warehouse.execute(statement)
                lines.append(f"{role}: reads {', '.join(reads + writes) or '-'}; writes {', '.join(writes) or '-'}")
    lines.append(f"grants applied on {where}; give a login user a role with: grant lakebox_analyst to <user>")
    return lines


def grant_statements(role: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> list[str]:
    """The GRANTs for one role; PostgreSQL's GRANT is idempotent, so these may run again."""
    statements = []
    for schema in reads:
        statements += [
            f"grant usage on schema {schema} to {role}",
            f"grant {READ} on all tables in schema {schema} to {role}",
            f"alter default privileges in schema {schema} grant {READ} on tables to {role}",
        ]
    for schema in writes:
        statements += [
            f"grant usage, create on schema {schema} to {role}",
            f"grant {WRITE} on all tables in schema {schema} to {role}",
            f"grant usage, select, update on all sequences in schema {schema} to {role}",
            f"alter default privileges in schema {schema} grant {WRITE} on tables to {role}",
            f"alter default privileges in schema {schema} grant usage, select, update on sequences to {role}",
        ]
    return statements


def _ensure_role(warehouse: Warehouse, role: str) -> bool:
    """Create a NOLOGIN role unless it exists (roles are cluster-wide, so another database
    may have made it already, even concurrently). True when this call created it."""
    if warehouse.query("select 1 from pg_roles where rolname = ?", [role]):
        return False
    warehouse.execute(
        f"do $$ begin create role {role} nologin; "
        "exception when duplicate_object or unique_violation then null; end $$"
    )
    return True
