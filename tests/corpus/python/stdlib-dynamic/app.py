"""Imports standard-library modules by names given on the command line (importlib, nothing a
static scan of this file can see) and uses each one's extension module."""

import importlib
import sys
from datetime import datetime, timezone


def use_sqlite3(m):
    db = m.connect(":memory:")
    (total,) = db.execute("select sum(value) from json_each('[1, 2, 3]')").fetchone()
    return f"json_each sum {total} (sqlite {m.sqlite_version_info[0]})"


def use_ssl(m):
    ctx = m.create_default_context()
    return f"{m.OPENSSL_VERSION.split()[0]} {m.OPENSSL_VERSION_INFO[0]}, CA certificates loaded {ctx.cert_store_stats()['x509_ca'] > 0}"


def use_lzma(m):
    data = b"binpack " * 1000
    return f"round trip {m.decompress(m.compress(data)) == data}"


def use_bz2(m):
    data = b"binpack " * 1000
    return f"round trip {m.decompress(m.compress(data)) == data}"


def use_ctypes(m):
    libc = m.CDLL(None)
    values = (m.c_int * 5)(5, 3, 9, 1, 7)
    compare = m.CFUNCTYPE(m.c_int, m.POINTER(m.c_int), m.POINTER(m.c_int))(lambda a, b: a[0] - b[0])
    libc.qsort(values, len(values), m.sizeof(m.c_int), compare)
    return f"strlen {libc.strlen(b'binpack')}, qsort through a callback {list(values)}"


def use_zoneinfo(m):
    noon = datetime(2024, 7, 1, 12, tzinfo=timezone.utc)
    return f"noon UTC is {noon.astimezone(m.ZoneInfo('Europe/Paris')):%H:%M %Z} in Paris"


def use_decimal(m):
    m.getcontext().prec = 30
    return f"1/7 = {m.Decimal(1) / m.Decimal(7)} (libmpdec {m.__libmpdec_version__})"


def use_uuid(m):
    return f"uuid5 {m.uuid5(m.NAMESPACE_DNS, 'binpack.example')}, _uuid extension {m._uuid is not None}"


def use_hashlib(m):
    return f"sha3_256 {m.sha3_256(b'binpack').hexdigest()[:16]}, sha512_256 {m.new('sha512_256', b'binpack').hexdigest()[:16]}"


for name in sys.argv[1:] or ["sqlite3"]:
    module = importlib.import_module(name)
    print(f"{name}: {globals()['use_' + name](module)}")
