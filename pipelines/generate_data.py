"""Generate the example pipeline's input data with a fixed seed (idempotent).

python pipelines/generate_data.py            # writes pipelines/data/ if files are missing
python pipelines/generate_data.py --force    # rewrites them
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
FILES = ("customers.csv", "orders.parquet", "products.json")
COUNTRIES = ["DE", "FR", "GB", "NL", "US", "ES", "IT", "SE"]
CATEGORIES = ["books", "garden", "kitchen", "music", "sports", "toys"]
FIRST = [
    "Alice",
    "Bob",
    "Carol",
    "Dan",
    "Eve",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
]
LAST = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore", "Clark"]


def generate(
    target: Path = DATA,
    *,
    customers: int = 1_000,
    orders: int = 5_000,
    products: int = 50,
    seed: int = 42,
) -> None:
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    people = []
    for cid in range(1, customers + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            {
                "customer_id": cid,
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{cid}@example.com",
                "country": rng.choice(COUNTRIES),
                "signup_date": (date(2023, 1, 1) + timedelta(days=rng.randrange(600))).isoformat(),
            }
        )
    pd.DataFrame(people).to_csv(target / "customers.csv", index=False)

    catalog = [
        {
            "product_id": pid,
            "product_name": f"{rng.choice(CATEGORIES)}-item-{pid:03d}",
            "category": rng.choice(CATEGORIES),
            "unit_price": round(rng.uniform(2, 250), 2),
        }
        for pid in range(1, products + 1)
    ]
    with open(target / "products.json", "w") as handle:
        for row in catalog:  # JSON lines, as Spark and pandas both read them
            handle.write(json.dumps(row) + "\n")

    sales = [
        {
            "order_id": oid,
            "customer_id": rng.randint(1, customers),
            "product_id": rng.randint(1, products),
            "quantity": rng.randint(1, 8),
            "order_date": pd.Timestamp(date(2024, 1, 1) + timedelta(days=rng.randrange(365))),
        }
        for oid in range(1, orders + 1)
    ]
    frame = pd.DataFrame(sales)
    frame["order_date"] = frame["order_date"].dt.date
    frame.to_parquet(target / "orders.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rewrite the files even if present")
    args = parser.parse_args()
    if args.force or not all((DATA / name).exists() for name in FILES):
        generate()
        print(f"example data written to {DATA}")


if __name__ == "__main__":
    main()
