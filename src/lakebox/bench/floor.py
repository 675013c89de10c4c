"""The floor: the orders pipeline's work written as one plain DuckDB SQL script over the
same lake files (parse, contract checks, raw load, latest-version staging, daily marts,
the marts' key tests, parquet export). The pipeline is judged by its ratio to this."""

from __future__ import annotations

from collections.abc import Sequence

from lakebox.ingest.json_pages import MAX_PAGE_BYTES

RECORD = (
    "STRUCT(order_id VARCHAR, customer_id VARCHAR, amount DOUBLE, currency VARCHAR, status VARCHAR, "
    "created_at VARCHAR, updated_at VARCHAR)"
)


def floor_steps(files: Sequence[str], parquet_out: str) -> list[tuple[str, str]]:
    """(stage, SQL) pairs, named like the pipeline's stages so they compare one to one."""
    listed = ", ".join(f"'{f}'" for f in files)
    statuses = ", ".join(f"'{s}'" for s in _accepted_statuses())
    return [
        ("load", f"""
            create schema raw;
            select json_structure(json_extract(content, '$.records')) from read_text([{listed}]);
            create table raw.parsed as
                select unnest(records, recursive := true), filename
                from read_json([{listed}], filename = true, maximum_object_size = {MAX_PAGE_BYTES},
                               columns = {{'records': '{RECORD}[]', 'next_cursor': 'VARCHAR'}});
            select count(*), count_if(order_id is null), count_if(customer_id is null),
                   count_if(try_cast(amount as double) < 0), count_if(amount is null),
                   count_if(status not in ({statuses})), count_if(not regexp_full_match(currency, '[A-Z]{{3}}')),
                   count_if(created_at is null), count_if(updated_at is null),
                   count_if(try_cast(created_at as timestamptz) is null), count_if(try_cast(updated_at as timestamptz) is null)
            from raw.parsed;
            select count(*) from (select filename, order_id from raw.parsed group by all having count(*) > 1);
            create table raw.orders as
                select order_id, customer_id, cast(amount as decimal(18,2)) as amount, currency, status,
                       timezone('UTC', cast(created_at as timestamptz)) as created_at,
                       timezone('UTC', cast(updated_at as timestamptz)) as updated_at,
                       filename as lake_path
                from raw.parsed;
            drop table raw.parsed;
        """),
        ("transform", """
            create table stg_orders as
                select order_id, customer_id, amount, upper(currency) as currency, status, created_at, updated_at,
                       cast(created_at as date) as order_date
                from raw.orders
                qualify row_number() over (partition by order_id order by updated_at desc) = 1;
            create table daily_order_metrics as
                select order_date, count(*) as total_orders, sum(amount) as total_amount, avg(amount) as avg_amount,
                       count(distinct customer_id) as unique_customers,
                       sum(case when status = 'cancelled' then 1 else 0 end) as cancelled_orders,
                       sum(case when status = 'refunded' then amount else 0 end) as refunded_amount
                from stg_orders group by order_date;
            select count(*) - count(distinct order_id), count_if(order_id is null) from stg_orders;
            select count(*) - count(distinct order_date) from daily_order_metrics;
        """),
        ("snapshot", f"copy daily_order_metrics to '{parquet_out}' (format parquet, compression zstd);"),
    ]


def _accepted_statuses() -> tuple[str, ...]:
    """The statuses orders' contract accepts (its pipeline.toml), as the pipeline checks them."""
    from lakebox.pipelines.orders.fetch import contract

    status = next(c for c in contract().columns if c.name == "status")
    return tuple(status.accepted or ())
