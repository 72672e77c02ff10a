"""The web UI: static files served by the API at / and /static/."""
