"""Production: machine states and stop reasons (`states`), shift calendars (`shifts`), time
intervals and overlapping stop records resolved so no instant counts twice (`intervals`), the
ISO 22400-2 time model with availability, performance, quality, OEE and TEEP (`oee`), control
charts and capability (`spc`) and their run rules, Nelson and Western Electric (`spc_rules`).
Pure: no I/O, no database, so the simulator, the engines and the API share one vocabulary."""
