"""SQLAlchemy 2 ORM through myguard (mysql+pymysql, mysql+mysqldb) compared with direct.

(The mysql+aiomysql async engine needs greenlet, which is not installed.)
"""

from __future__ import annotations

import decimal

import pytest
from clients import Target, targets
from sqlalchemy import ForeignKey, Numeric, String, create_engine, func, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)


def make_models(suffix: str):
    class Base(DeclarativeBase):
        pass

    class Customer(Base):
        __tablename__ = f"orm_customer_{suffix}"
        __table_args__ = {"mysql_charset": "utf8mb4"}
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)
        orders: Mapped[list[Order]] = relationship(
            back_populates="customer", cascade="all, delete-orphan"
        )

    class Order(Base):
        __tablename__ = f"orm_order_{suffix}"
        __table_args__ = {"mysql_charset": "utf8mb4"}
        id: Mapped[int] = mapped_column(primary_key=True)
        customer_id: Mapped[int] = mapped_column(ForeignKey(f"orm_customer_{suffix}.id"))
        total: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
        note: Mapped[str | None] = mapped_column(String(100))
        customer: Mapped[Customer] = relationship(back_populates="orders")

    return Base, Customer, Order


def url(dialect: str, target: Target) -> str:
    return f"mysql+{dialect}://{target.user}:{target.password}@127.0.0.1:{target.port}/test?charset=utf8mb4"


def orm_work(session_factory, Base, Customer, Order) -> list:
    seen: list = []
    with session_factory() as s:
        s.add_all(
            [
                Customer(
                    name="Ada 😀",
                    orders=[
                        Order(total=decimal.Decimal("10.50"), note="漢字"),
                        Order(total=decimal.Decimal("2")),
                    ],
                ),
                Customer(name="Alan", orders=[Order(total=decimal.Decimal("99.99"), note=None)]),
                Customer(name="Grace"),
            ]
        )
        s.commit()
        seen.append(s.scalars(select(Customer.name).order_by(Customer.id)).all())
        q = (
            select(Customer.name, func.count(Order.id), func.sum(Order.total))
            .join(Order, isouter=True)
            .group_by(Customer.id)
            .order_by(Customer.id)
        )
        seen.append([tuple(r) for r in s.execute(q)])
        big = s.scalars(select(Order).where(Order.total > 5).order_by(Order.id)).all()
        seen.append([(o.id, o.customer.name, o.total, o.note) for o in big])
        ada = s.scalars(
            select(Customer)
            .where(Customer.name.like("Ada%"))
            .options(selectinload(Customer.orders))
        ).one()
        ada.orders[0].note = "updated"
        ada.orders.pop()  # delete-orphan
        s.commit()
        seen.append([(o.total, o.note) for o in s.scalars(select(Order).order_by(Order.id))])
        s.add(Customer(name="Temp"))
        s.flush()
        seen.append(s.scalar(select(func.count(Customer.id))))
        s.rollback()
        seen.append(s.scalar(select(func.count(Customer.id))))
        s.add(Customer(name="Alan"))
        try:
            s.commit()
            seen.append("no error")
        except Exception as exc:
            s.rollback()
            seen.append((type(exc).__name__, exc.orig.args[0], str(exc.orig.args[1])))
        s.delete(s.scalars(select(Customer).where(Customer.name == "Alan")).one())
        s.commit()
        seen.append(s.scalar(select(func.count(Order.id))))
    return seen


@pytest.mark.parametrize("dialect", ["pymysql", "mysqldb"])
def test_orm_sync(dialect, proxy, mariadb):
    results = []
    for target in targets(proxy, mariadb)[::-1]:  # direct first
        Base, Customer, Order = make_models(dialect)
        engine = create_engine(url(dialect, target))
        try:
            Base.metadata.drop_all(engine)
            Base.metadata.create_all(engine)
            results.append(orm_work(lambda e=engine: Session(e), Base, Customer, Order))
            Base.metadata.drop_all(engine)
        finally:
            engine.dispose()
    direct, through = results
    assert through == direct
    assert direct[0] == ["Ada 😀", "Alan", "Grace"]
    assert direct[1] == [
        ("Ada 😀", 2, decimal.Decimal("12.50")),
        ("Alan", 1, decimal.Decimal("99.99")),
        ("Grace", 0, None),
    ]
    assert direct[4:6] == [4, 3]
    assert direct[6][:2] == ("IntegrityError", 1062)
    assert direct[7] == 1
