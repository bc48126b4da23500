import pandas as pd
import pytest


@pytest.fixture
def seed_data(tmp_path, monkeypatch):
    """The seed's customer data under ./data, with the working directory at tmp_path."""
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "name": ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"],
            "email": [f"{n}@example.com" for n in ("alice", "bob", "carol", "dan", "eve", "frank")],
            "country": ["DE", "FR", "DE", "US", "DE", "FR"],
        }
    ).to_csv(data / "customers.csv", index=False)
    pd.DataFrame(
        {"order_id": [10, 11, 12, 13], "customer_id": [1, 2, 3, 1], "amount": [5.0, 7.5, 1.25, 3.0]}
    ).to_csv(data / "orders.csv", index=False)
    pd.DataFrame(
        {"product_id": [100, 101], "customer_id": [1, 3], "product": ["pen", "ink"]}
    ).to_csv(data / "products.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return data
