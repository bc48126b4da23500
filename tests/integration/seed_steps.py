"""The step definitions behind the seed's ``...``: a 5-step pipeline of the seed's shape."""

from odibi_core import Step


def five_steps(store_format="parquet"):
    return [
        Step(
            layer="ingest",
            name="read_customers",
            value="data/customers.csv",
            outputs={"data": "raw_customers"},
        ),
        Step(
            layer="transform",
            name="filter_customers",
            type="sql",
            value="SELECT * FROM bronze WHERE country = 'DE'",
            inputs={"bronze": "raw_customers"},
            outputs={"data": "de_customers"},
        ),
        Step(
            layer="transform",
            name="add_column",
            type="sql",
            value="SELECT *, 100 as new_column FROM bronze",
            inputs={"bronze": "de_customers"},
            outputs={"data": "with_column"},
        ),
        Step(
            layer="transform",
            name="drop_columns",
            type="sql",
            value="SELECT customer_id, name, new_column FROM bronze",
            inputs={"bronze": "with_column"},
            outputs={"data": "slim"},
        ),
        Step(
            layer="store",
            name="save",
            value="out/slim",
            params={"format": store_format},
            inputs={"data": "slim"},
        ),
    ]


def three_ingests_and_join():
    return [
        Step(
            layer="ingest",
            name="read_customers",
            value="data/customers.csv",
            outputs={"data": "raw_customers"},
        ),
        Step(
            layer="ingest",
            name="read_orders",
            value="data/orders.csv",
            outputs={"data": "raw_orders"},
        ),
        Step(
            layer="ingest",
            name="read_products",
            value="data/products.csv",
            outputs={"data": "raw_products"},
        ),
        Step(
            layer="transform",
            name="join_all",
            type="sql",
            value="SELECT c.customer_id, c.name, o.order_id, p.product FROM customers c "
            "JOIN orders o ON c.customer_id = o.customer_id "
            "LEFT JOIN products p ON c.customer_id = p.customer_id",
            inputs={
                "customers": "raw_customers",
                "orders": "raw_orders",
                "products": "raw_products",
            },
            outputs={"data": "joined"},
        ),
    ]
