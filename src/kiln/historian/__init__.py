"""The historian: every value on the bus, stored in DuckDB or PostgreSQL, and queried back.

`maths` holds what a historian computes (timelines, aggregates, rollups, calendars,
compression), with NumPy and no database; `store` (DuckDB), `pg_store` (PostgreSQL) and
`service` (the platform service: one batched writer, queries off the event loop) hold the rest.
This file imports nothing, so that importing the maths loads no database driver.
"""
