"""Where the audit chain's key comes from, so that it can live apart from the data it protects.

By default the chain key is derived from the install secret, `<data_dir>/secret.key`: whoever
holds a copy of the data directory holds the key too, and can rewrite the log so that it
verifies. An operator who wants more gives the audit log a secret of its own, kept elsewhere:

- `KILN_AUDIT_KEY`: 32 bytes as 64 hex digits or base64, from the service manager's
  credential store, say;
- `security.audit_key_file`: a file (mode 0600) holding 32 bytes, raw, hex or base64, on
  another disk or a mount only the Kiln service can read.

An existing log goes on: its records stay signed by the install secret's key, the next record is
signed by the new key and links to them, and `verify` accepts the old key only for the records
before the first one the new key signed (`AuditKeys.previous`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.core.errors import ConfigError
from kiln.security.secrets import SECRET_FILE_NAME, SECRET_SIZE, load_or_create_secret, load_secret

ENV_VAR = "KILN_AUDIT_KEY"
_SETTING = "security.audit_key_file"
_GENERATE = "head -c 32 /dev/urandom > FILE && chmod 600 FILE"


class AuditKeyConfigError(ConfigError):
    """The configured audit key cannot be used; the message names the setting and the fix."""


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The secret the chain is signed with now, the secrets it was signed with before (oldest
    first), and where the current one comes from. `beside_data` is True when it is the install
    secret in the data directory."""

    secret: bytes
    previous: tuple[bytes, ...]
    source: str
    beside_data: bool


def load_audit_keys(
    data_dir: Path,
    key_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    create: bool = True,
) -> AuditKeys:
    """The audit secrets for a data directory, `security.audit_key_file` and the environment.

    With `create`, a data directory without an install secret gets one (as on first start);
    without, it is an error (`kiln audit verify` must not invent a key). Raises
    AuditKeyConfigError for a key that is missing, unreadable, unsafe or of the wrong length.
    """
    env = os.environ if environ is None else environ
    text = env.get(ENV_VAR)
    if text is not None and key_file is not None:
        raise AuditKeyConfigError(
            f"both {ENV_VAR} and {_SETTING} ({key_file}) give the audit key; keep one of them"
        )
    if text is None and key_file is None:
        install = load_or_create_secret(data_dir) if create else load_secret(data_dir)
        return AuditKeys(install, (), str(data_dir / SECRET_FILE_NAME), beside_data=True)
    if text is not None:
        secret = _decode(text, f"the environment variable {ENV_VAR}")
        source = ENV_VAR
    else:
        assert key_file is not None
        secret = read_key_file(key_file)
        source = str(key_file)
    try:
        install = load_secret(data_dir)
    except FileNotFoundError:
        previous: tuple[bytes, ...] = ()  # a new install: the log starts with this key
    else:
        previous = () if install == secret else (install,)
    return AuditKeys(secret, previous, source, beside_data=False)


def read_key_file(path: Path) -> bytes:
    """The 32-byte key in `path` (raw, hex or base64); AuditKeyConfigError naming the setting."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise AuditKeyConfigError(
            f"{_SETTING}: {path} does not exist. Create a key with `{_GENERATE}`, or correct "
            "the path (a relative path starts at the configuration file's folder)"
        ) from None
    except OSError as err:
        raise AuditKeyConfigError(
            f"{_SETTING}: cannot read {path}: {err.strerror}. The Kiln service's user must be "
            "able to read it (and nobody else)"
        ) from err
    st = os.fstat(fd)  # on the open descriptor: the file checked is the file read
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise AuditKeyConfigError(
            f"{_SETTING}: {path} is not a regular file; it must be the file holding the key"
        )
    with os.fdopen(fd, "rb") as handle:
        if os.name == "posix" and st.st_mode & 0o077:
            raise AuditKeyConfigError(
                f"{_SETTING}: {path} is readable by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); whoever reads it can forge the audit log. "
                f"Fix: chmod 600 {path}"
            )
        data = handle.read(4096)
    if len(data) == SECRET_SIZE:
        return data
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    return _decode(text, f"{_SETTING} ({path}, {len(data)} bytes)")


def _decode(text: str, what: str) -> bytes:
    text = text.strip()
    decoded: bytes | None = None
    if len(text) == 2 * SECRET_SIZE:
        try:
            decoded = bytes.fromhex(text)
        except ValueError:
            decoded = None
    if decoded is None:
        try:
            decoded = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is None or len(decoded) != SECRET_SIZE:
        raise AuditKeyConfigError(
            f"{what} is not a {SECRET_SIZE}-byte key: give {SECRET_SIZE} raw bytes, "
            f"{2 * SECRET_SIZE} hex digits or base64 of {SECRET_SIZE} bytes (e.g. `{_GENERATE}`, "
            "or `openssl rand -hex 32`)"
        )
    return decoded
