"""mmh3 3.0.0 has no wheel for CPython 3.11: pip builds its C extension from the sdist."""

import mmh3

print(f"mmh3 hash('foo') {mmh3.hash('foo')}, hash64('foo') {mmh3.hash64('foo')}, hash128('foo') {mmh3.hash128('foo')}")
