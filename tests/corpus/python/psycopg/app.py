"""psycopg 3 with its binary implementation (libpq vendored in psycopg_binary.libs): libpq
answers a connection to a server that is not there."""

import psycopg
from psycopg import sql

print(f"psycopg {psycopg.__version__} impl {psycopg.pq.__impl__} libpq {psycopg.pq.version() // 10000}")
try:
    psycopg.connect("host=/nonexistent dbname=corpus connect_timeout=1")
except psycopg.OperationalError as e:
    print(f"connect refused: {str(e).splitlines()[0].split(': ', 1)[1]}")
query = sql.SQL("SELECT {} FROM {}").format(sql.Identifier("title"), sql.Identifier("book"))
print(f"composed: {query.as_string()}")
