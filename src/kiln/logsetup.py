"""Logging for the `kiln` commands: quiet by default, and never a credential.

At the default level (info) a running Kiln writes a line when it starts and stops, when a
connector changes state, and when something goes wrong. What libraries log at INFO (the access
line of every request, uvicorn's start-up steps, Alembic's migration context) is detail: it
shows with `--log-level debug`.

Every record passes `RedactSecrets` before any handler formats it: InfluxDB 1.x clients send
their token as the `p` query parameter, so the access line of such a request would otherwise
carry a device credential into the log (IEC 62443-4-2 CR 1.5: authenticators are protected).
"""

from __future__ import annotations

import logging
import re
import traceback

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Libraries whose INFO records are detail; below debug they show warnings and worse only.
DETAIL_LOGGERS = ("alembic", "uvicorn.error", "uvicorn.access")

# Query parameters whose value is a secret. `u` (InfluxDB 1.x's user name) is not one and stays
# readable: it says which client called.
SECRET_PARAMETERS = (
    "p",
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "auth",
    "authorization",
    "signature",
    "sig",
)
REDACTED = "***"

# `name=value` in a query string (after ?, & or ;) or on its own (a logged query string): the
# name may not be the tail of a longer word, so `step=3` stays as it is.
_PARAMETER = re.compile(r"(?i)(?<![\w.%-])((?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;\s\"'#]+")
# Kiln's own opaque tokens anywhere in a message (a path, a header echoed in an error): the id
# stays, which is enough to tell which credential it was; the secret goes.
_KILN_TOKEN = re.compile(r"\b(kiln_(?:dev|key|rt)_[0-9a-f]+_)[A-Za-z0-9_-]+")
# The password of a URL's user information (a database URL in an error).
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*:)[^/\s@]+@")


def redact(text: str) -> str:
    """`text` with secret query parameters, Kiln tokens and URL passwords replaced by ***."""
    text = _PARAMETER.sub(rf"\1{REDACTED}", text)
    text = _KILN_TOKEN.sub(rf"\1{REDACTED}", text)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, arguments and traceback text with `redact`.

    The arguments are rewritten one by one, not merged into the message, so a formatter that
    reads them (uvicorn's access formatter takes the request line from `args[2]`) still works.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatters reuse `exc_text` when it is set, so the traceback is formatted once,
            # here, and an exception message that quotes a URL is redacted like the rest.
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def configure_logging(level: str) -> None:
    """Kiln's format on the root logger at `level` (debug, info, warning, error), redacted."""
    root = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=root, format=FORMAT)
    for name in DETAIL_LOGGERS:
        logging.getLogger(name).setLevel(
            root if root <= logging.DEBUG else max(root, logging.WARNING)
        )
    install_redaction()


def install_redaction() -> None:
    """Put `RedactSecrets` on the root logger's handlers and on the loggers that print URLs.

    A logger's filters see only the records made on that very logger, a handler's see every
    record it writes: the handlers catch records of any logger that propagate to the root, the
    loggers catch records that reach a handler of their own.
    """
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name in ("kiln", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
