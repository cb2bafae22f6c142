"""SQLAlchemy's ORM on the standard library's sqlite3 (libsqlite3 from the closure)."""

import sqlite3

import sqlalchemy
from sqlalchemy import ForeignKey, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    price: Mapped[float]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
with Session(engine) as s:
    s.add_all([
        Author(name="Herbert", books=[Book(title="Dune", price=9.99), Book(title="Dune Messiah", price=7.5)]),
        Author(name="Austen", books=[Book(title="Emma", price=4.5)]),
    ])
    s.commit()
    count, total = s.execute(select(func.count(Book.id), func.sum(Book.price))).one()
    cheapest = s.scalars(select(Book).order_by(Book.price)).first()
    print(f"sqlalchemy {sqlalchemy.__version__} on sqlite {sqlite3.sqlite_version_info[0]}: "
          f"{count} books, {total:.2f} in all, cheapest {cheapest.title} by {cheapest.author.name}")
