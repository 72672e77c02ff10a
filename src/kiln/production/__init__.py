"""Production: machine states and stop reasons (`states`), shift calendars (`shifts`), and
what will be measured on them (counts, OEE, downtime). Pure: no I/O, no database, so the
simulator, the engines and the API share one vocabulary."""
