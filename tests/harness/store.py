"""The OfficeFlow store in tests: emptying tables between tests."""

from __future__ import annotations


def truncate(store_url: str, *tables: str, cascade: bool = False) -> None:
    """Empty ``tables`` of the store at ``store_url`` (PostgreSQL); ``cascade``: and what references them."""
    from sqlalchemy import text

    from include.officeflow.store import get_engine

    with get_engine(store_url).begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)}{' CASCADE' if cascade else ''}"))
