"""The first start of an installation: the schema, the install secret, the first administrator.

There is no default password: the first administrator's is random, written to a file only the
owner can read, and shown once by the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from kiln.core.files import write_private_file
from kiln.security.passwords import PasswordHashing
from kiln.security.runtime import LOGGER, IdentityRuntime
from kiln.security.secrets import generate_password, load_or_create_secret
from kiln.security.store import Conflict, RoleAssignment, SecurityStore, TenantKind
from kiln.security.tenancy import DEFAULT_TENANT

BOOTSTRAP_ADMIN = "admin"
INITIAL_ADMIN_FILE = "initial-admin.txt"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """The first administrator, created on the first start; the CLI shows the password once."""

    username: str
    password: str = field(repr=False)
    path: Path


def open_store(store: SecurityStore, data_dir: Path, hashing: PasswordHashing) -> bytes:
    """Migrate the database and return the install secret (made on the first start)."""
    store.upgrade()
    # The dummy hash for unknown users is made now, so that the first such login does not
    # take twice as long as a wrong password and give the difference away.
    hashing.dummy_verify("")
    return load_or_create_secret(data_dir)


def bootstrap_if_empty(
    rt: IdentityRuntime, store: SecurityStore, data_dir: Path, roots: Sequence[str]
) -> BootstrapResult | None:
    """On the very first start (no user at all): the default tenant and its administrator.

    The password goes to a file readable by the owner only, written before the user is
    stored: if storing fails, the next start simply tries again with a new password.
    """
    if store.count_users() > 0:
        return None
    now = rt.now()
    password = generate_password(username=BOOTSTRAP_ADMIN)
    path = data_dir / INITIAL_ADMIN_FILE
    write_private_file(
        path,
        f"# Kiln initial administrator, created {now.isoformat()}\n"
        "# Sign in, change this password at once, then delete this file.\n"
        f"username: {BOOTSTRAP_ADMIN}\n"
        f"password: {password}\n",
    )
    # The tenant may be left by an earlier start that failed before creating the user.
    with suppress(Conflict):
        store.create_tenant(DEFAULT_TENANT, TenantKind.OWNER, roots, now=now)
    store.create_user(
        DEFAULT_TENANT,
        BOOTSTRAP_ADMIN,
        rt.hashing.hash_password(password),
        [RoleAssignment("admin")],
        now=now,
    )
    LOGGER.warning(
        "Created the first administrator %r; its password is in %s (change it, then delete "
        "the file)",
        BOOTSTRAP_ADMIN,
        path,
    )
    return BootstrapResult(BOOTSTRAP_ADMIN, password, path)
