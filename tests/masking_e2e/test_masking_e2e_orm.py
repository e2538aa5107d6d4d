"""SQLAlchemy 2 ORM through myguard as bob: masked objects keep their Python types."""

from __future__ import annotations

import datetime
import decimal

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    select,
    text,
)
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    ssn: Mapped[str | None] = mapped_column(String(11))
    card_number: Mapped[str | None] = mapped_column(String(19))
    birth_date: Mapped[datetime.date | None] = mapped_column(Date)
    credit_limit: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime)


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_orm_objects_are_masked_and_typed(driver, proxy, mariadb, leak_scanner):
    from mariadb_server import ROOT_PASSWORD

    through = create_engine(f"mysql+{driver}://bob:bob-pw-2@127.0.0.1:{proxy.port}/shop")
    straight = create_engine(f"mysql+{driver}://root:{ROOT_PASSWORD}@127.0.0.1:{mariadb.port}/shop")
    try:
        with Session(through) as s:
            masked = s.scalars(select(Customer).order_by(Customer.id)).all()
            one = s.get(Customer, 3)
            rows = [(c.id, c.name, c.email, c.phone, c.ssn, c.card_number) for c in masked]
        with Session(straight) as s:
            clear = s.scalars(select(Customer).order_by(Customer.id)).all()
    finally:
        through.dispose()
        straight.dispose()
    assert not leak_scanner.leaks(repr(rows).encode())
    assert len(masked) == len(clear) == 8
    assert one is not None and one.name == "****" and one.email == "****@navy.example"
    for m, c in zip(masked, clear, strict=True):
        assert m.id == c.id
        assert isinstance(m.birth_date, datetime.date) and m.birth_date == c.birth_date
        assert isinstance(m.credit_limit, decimal.Decimal) and m.credit_limit == c.credit_limit
        assert isinstance(m.created_at, datetime.datetime) and m.created_at == c.created_at
        assert m.name == "****" and m.phone == "****"
        assert isinstance(m.email, str) and m.email == "****" + c.email[c.email.rfind("@") :]
        assert isinstance(m.ssn, str) and m.ssn == "*******" + c.ssn[-4:]
        assert m.card_number is None and c.card_number is not None


def test_sqlalchemy_values_in_a_cte_and_on_duplicate_key_update(proxy):
    """What SQLAlchemy writes for values() as a CTE (its test suite's form) and for
    on_duplicate_key_update(): sqlglot reads neither as written; both were refused as
    unparsed. The CTE's values are literals, not masked; the customers' emails are."""
    through = create_engine(f"mysql+pymysql://bob:bob-pw-2@127.0.0.1:{proxy.port}/shop")
    counts = Table(
        "counts", MetaData(), Column("k", Integer, primary_key=True), Column("n", Integer),
        schema="test",
    )  # fmt: skip
    try:
        with through.connect() as conn:
            rows = conn.exec_driver_sql(
                "WITH chosen(cid, label) AS (VALUES (1, 'first'), (3, 'third')) "
                "SELECT chosen.label, customers.email FROM chosen "
                "JOIN customers ON customers.id = chosen.cid ORDER BY chosen.cid"
            ).all()
    finally:
        through.dispose()
    writer = create_engine(f"mysql+pymysql://alice:alice-pw-1@127.0.0.1:{proxy.port}/shop")
    try:
        with writer.connect() as conn:
            conn.execute(text("CREATE TEMPORARY TABLE test.counts (k INT PRIMARY KEY, n INT)"))
            for _ in range(2):
                stmt = insert(counts).values(k=1, n=1)
                conn.execute(stmt.on_duplicate_key_update(n=counts.c.n + stmt.inserted.n))
            assert conn.execute(text("SELECT n FROM test.counts WHERE k = 1")).scalar() == 2
    finally:
        writer.dispose()
    assert [label for label, _ in rows] == ["first", "third"]
    assert all(email.startswith("****@") for _, email in rows)  # still masked
