-- A day cannot have more cancelled orders or customers than orders.
select order_date from {{ ref('daily_order_metrics') }}
where cancelled_orders > total_orders or unique_customers > total_orders
