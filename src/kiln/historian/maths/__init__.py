"""What the historian computes, apart from where it stores it: value timelines (`timeline`),
aggregates per bucket (`aggregates`, `analysis`), rollup rows and the answers they give
(`rollup`), calendar buckets (`calendar`), exception and swinging-door compression
(`compression`, `thinning`) and the columnar form they work on (`columns`).

NumPy and pydantic only: no DuckDB, PostgreSQL, pyarrow or SQLAlchemy (tests/test_light_imports.py
checks), so analytics, production and tools can use the maths without a database.
"""
