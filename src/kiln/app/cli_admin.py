"""`kiln admin ...` and `kiln audit ...`: the platform operator's commands.

They open the identity and audit databases of a data directory (or of a plant configuration)
directly, so they work whether the server runs or not; a running server picks the change up
within a second (`kiln.security.service.mark_changed`). The operator acts as the local
administrator (`Identity.local_operator`) and every change is recorded in the audit log with
actor "cli:<login name>" and source "cli".

Secrets (passwords, API keys, device credentials) are printed once, to standard output, and
never logged.

The identity and audit services (SQLAlchemy, the stores, the cryptography) are imported when a
command runs: the parsers are built for every `kiln` command, `kiln --help` included.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kiln.app.settings import KilnSettings, installed_settings, load_settings
from kiln.core.clock import SystemClock
from kiln.core.errors import ConfigError
from kiln.core.platform import Platform, Stage
from kiln.security.settings import SecuritySettings

if TYPE_CHECKING:
    from kiln.security.audit import AuditLog
    from kiln.security.principal import Principal
    from kiln.security.service import Identity

_LOGGER = logging.getLogger(__name__)

Handler = Callable[["AdminSession", argparse.Namespace], Awaitable[int]]

# The audit categories these commands record (`kiln.security.audit.Category`'s values).
AuditCategory = Literal["account", "authorization", "configuration"]


def add_parsers(sub: Any) -> None:
    """Add the `admin` and `audit` commands to the `kiln` parser's subcommands."""
    admin = sub.add_parser(
        "admin",
        help="users, roles, API keys, device credentials, tenants, TLS (operator)",
        description="Manage who may do what. Works on the data directory, server running or not.",
    )
    admin.set_defaults(handler=run)
    _where(admin)
    groups = admin.add_subparsers(dest="admin_group", metavar="GROUP", required=True)

    users = groups.add_parser("users", help="people who sign in").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    users.add_parser("list", help="list the users").set_defaults(run=_users_list)
    add = users.add_parser("add", help="create a user; the password is asked for or generated")
    add.add_argument("username")
    add.add_argument("--role", action="append", default=[], help="role (repeatable)")
    add.add_argument("--scope", help="namespace subtree the roles apply to (default: all)")
    _password_source(add)
    add.set_defaults(run=_users_add)
    pw = users.add_parser("password", help="set a user's password (ends its sessions)")
    pw.add_argument("username")
    _password_source(pw)
    pw.set_defaults(run=_users_password)
    for name, disabled in (("disable", True), ("enable", False)):
        p = users.add_parser(name, help=f"{name} a user")
        p.add_argument("username")
        p.set_defaults(run=_users_disable, disabled=disabled)
    reset = users.add_parser("reset-totp", help="remove a user's second factor")
    reset.add_argument("username")
    reset.set_defaults(run=_users_reset_totp)

    roles = groups.add_parser("roles", help="roles and role assignments").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    roles.add_parser("list", help="built-in and custom roles").set_defaults(run=_roles_list)
    radd = roles.add_parser("add", help="a custom role from named permissions")
    radd.add_argument("name")
    radd.add_argument("--permission", action="append", required=True, help="(repeatable)")
    radd.set_defaults(run=_roles_add)
    for name, fn in (("assign", _roles_assign), ("revoke", _roles_revoke)):
        p = roles.add_parser(name, help=f"{name} a role of a user")
        p.add_argument("username")
        p.add_argument("role")
        p.add_argument("--scope", help="namespace subtree (default: the whole tenant)")
        p.set_defaults(run=fn)

    keys = groups.add_parser("keys", help="API keys for integrations").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    klist = keys.add_parser("list", help="a user's keys")
    klist.add_argument("--user", required=True)
    klist.set_defaults(run=_keys_list)
    kadd = keys.add_parser("add", help="a key acting for a user; printed once")
    kadd.add_argument("name")
    kadd.add_argument("--user", required=True, help="the user the key acts for")
    kadd.add_argument("--permission", action="append", required=True, help="(repeatable)")
    kadd.add_argument("--scope", help="namespace subtree (default: the user's)")
    kadd.add_argument("--days", type=int, default=90, help="expires after (default: %(default)s)")
    kadd.set_defaults(run=_keys_add)
    krev = keys.add_parser("revoke", help="revoke a key by id")
    krev.add_argument("key_id")
    krev.set_defaults(run=_keys_revoke)

    devices = groups.add_parser("devices", help="device and gateway credentials").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    devices.add_parser("list", help="list device credentials").set_defaults(run=_devices_list)
    dadd = devices.add_parser("add", help="a credential for a device; printed once")
    dadd.add_argument("name")
    dadd.add_argument("--prefix", required=True, help="the namespace path it may publish under")
    dadd.set_defaults(run=_devices_add)
    drev = devices.add_parser("revoke", help="revoke a device's credential at once")
    drev.add_argument("name")
    drev.set_defaults(run=_devices_revoke)

    tenants = groups.add_parser("tenants", help="organisations").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    tenants.add_parser("list", help="list the tenants").set_defaults(run=_tenants_list)
    tadd = tenants.add_parser("add", help="an owner (with namespace roots) or a partner")
    tadd.add_argument("name")
    tadd.add_argument("--kind", choices=["owner", "partner"], default="owner")
    tadd.add_argument("--root", action="append", default=[], help="namespace root (repeatable)")
    tadd.add_argument("--admin", help="create this first administrator of the tenant")
    tadd.set_defaults(run=_tenants_add)

    tls = groups.add_parser("tls", help="TLS certificates").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    cert = tls.add_parser("self-signed", help="a self-signed certificate for a test plant")
    cert.add_argument("--cert", type=Path, default=Path("kiln-cert.pem"))
    cert.add_argument("--key", type=Path, default=Path("kiln-key.pem"))
    cert.add_argument(
        "--host", action="append", default=[], help="DNS name or IP (default: localhost)"
    )
    cert.add_argument("--days", type=int, default=365)
    cert.set_defaults(offline=_tls_self_signed)

    audit = sub.add_parser(
        "audit",
        help="check or export the tamper-evident audit log",
        description="Work with the audit log of a data directory.",
    )
    audit.set_defaults(handler=run)
    _where(audit)
    aud = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    ver = aud.add_parser(
        "verify",
        help="check the hash chain; exits 1 and names the records when tampered",
    )
    _where(ver)
    ver.add_argument(
        "--anchors",
        type=Path,
        default=None,
        help="directory of published anchors (default: security.audit_anchor_dir): catches a "
        "chain rewritten with the key after they were published",
    )
    ver.set_defaults(offline=_audit_verify)
    move = aud.add_parser(
        "move-key",
        help="take up the log with the key of security.audit_key_file or KILN_AUDIT_KEY",
        description="Run once, with Kiln stopped, after setting a new audit key: checks the log "
        "with the old key and re-signs its head anchor with the new one.",
    )
    _where(move)
    move.set_defaults(offline=_audit_move_key)


def _where(p: argparse.ArgumentParser) -> None:
    # Accepted before or after the action (`kiln admin --data-dir D users list` or
    # `kiln audit verify --data-dir D`); SUPPRESS keeps a later default from hiding an earlier one.
    p.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="data directory (./kiln-data)"
    )
    p.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="plant configuration (YAML)"
    )


def _password_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--generate", action="store_true", help="generate one and print it once")
    src.add_argument(
        "--password-stdin", action="store_true", help="read it from standard input (scripts)"
    )


def settings_of(args: argparse.Namespace) -> KilnSettings:
    config: Path | None = getattr(args, "config", None)
    if config is not None:
        return load_settings(config)
    data_dir: Path = getattr(args, "data_dir", Path("kiln-data"))
    return installed_settings()(data_dir=data_dir.resolve())


def run(args: argparse.Namespace) -> int:
    """Run the parsed `admin`/`audit` command; the exit code."""
    offline = getattr(args, "offline", None)
    if offline is not None:
        code: int = offline(args)
        return code
    settings = settings_of(args)
    if not settings.data_dir.is_dir():
        print(
            f"kiln admin: no data directory {settings.data_dir}: start the platform once, "
            "or give --data-dir or --config",
            file=sys.stderr,
        )
        return 2
    from kiln.security.principal import AuthError, PermissionDenied
    from kiln.security.store import Conflict

    handler: Handler = args.run
    try:
        return asyncio.run(_session(settings, handler, args))
    except (PermissionDenied, AuthError) as err:
        print(f"kiln admin: not allowed: {err}", file=sys.stderr)
    except Conflict as err:
        print(f"kiln admin: {err}", file=sys.stderr)
    except LookupError as err:
        print(f"kiln admin: {str(err).strip(chr(39))}", file=sys.stderr)
    except ValueError as err:
        print(f"kiln admin: {err}", file=sys.stderr)
    return 2


class AdminSession:
    """The identity and audit services of one data directory, and the operator acting."""

    def __init__(self, identity: Identity, audit: AuditLog, settings: KilnSettings) -> None:
        self.identity = identity
        self.audit = audit
        self.settings = settings
        self.login = _login_name()
        self.operator: Principal = identity.local_operator(f"cli:{self.login}")

    async def record(
        self,
        category: AuditCategory,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        *,
        changed: bool = True,
    ) -> None:
        from kiln.security.audit import Category, Result
        from kiln.security.service import mark_changed

        await self.audit.record(
            actor=f"cli:{self.login}",
            source="cli",
            category=Category(category),
            action=action,
            target=target,
            result=Result.SUCCESS,
            detail=detail,
        )
        if changed:
            mark_changed(self.settings.data_dir)


async def _session(settings: KilnSettings, handler: Handler, args: argparse.Namespace) -> int:
    from kiln.security.audit.setup import audit_log_from
    from kiln.security.service import Identity

    clock = SystemClock()
    data_dir = settings.data_dir
    sec = settings.section(SecuritySettings)
    platform = Platform(clock=clock, data_dir=data_dir)
    identity = Identity(sec.identity_url_in(data_dir), data_dir=data_dir, clock=clock)
    # A command is over in seconds: the server's background verification is not for it.
    audit = audit_log_from(sec, data_dir, watch=False)
    platform.add(identity, Stage.STORAGE)
    platform.add(audit, Stage.STORAGE)
    async with platform:
        if identity.bootstrap_result is not None:
            result = identity.bootstrap_result
            print(f"created the first administrator {result.username!r}; password in {result.path}")
        return await handler(AdminSession(identity, audit, settings), args)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, whether it was generated and must be shown)."""
    from kiln.security.secrets import generate_password

    if args.generate:
        return generate_password(username=args.username), True
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise ValueError("no password on standard input")
        return line, False
    first = getpass.getpass("new password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ; nothing changed")
    return first, False


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# -- users --------------------------------------------------------------------------------


async def _users_list(s: AdminSession, args: argparse.Namespace) -> int:
    users = await s.identity.list_users(s.operator, s.operator.tenant)
    _table(
        [
            [
                u.username,
                ", ".join(f"{a.role}@{a.scope or '*'}" for a in u.roles) or "-",
                "disabled" if u.disabled else "enabled",
                "yes" if u.totp_enabled else "no",
                _when(u.last_login_at),
            ]
            for u in users
        ],
        ["USER", "ROLES", "STATE", "TOTP", "LAST LOGIN"],
    )
    return 0


async def _users_add(s: AdminSession, args: argparse.Namespace) -> int:
    password, show = _read_password(args)
    user = await s.identity.create_user(
        s.operator, s.operator.tenant, args.username, password, args.role, scope=args.scope
    )
    await s.record(
        "account", "user.create", user.username, {"roles": args.role, "scope": args.scope}
    )
    print(f"user {user.username} created with roles {', '.join(args.role) or '(none)'}")
    if show:
        print(f"password (shown once): {password}")
    return 0


async def _users_password(s: AdminSession, args: argparse.Namespace) -> int:
    password, show = _read_password(args)
    await s.identity.set_password(s.operator, args.username, password)
    await s.record("account", "user.password", args.username)
    print(f"password of {args.username} changed; its sessions have ended")
    if show:
        print(f"password (shown once): {password}")
    return 0


async def _users_disable(s: AdminSession, args: argparse.Namespace) -> int:
    await s.identity.disable_user(s.operator, args.username, args.disabled)
    action = "user.disable" if args.disabled else "user.enable"
    await s.record("account", action, args.username)
    print(f"user {args.username} {'disabled' if args.disabled else 'enabled'}")
    return 0


async def _users_reset_totp(s: AdminSession, args: argparse.Namespace) -> int:
    await s.identity.reset_totp(s.operator, args.username)
    await s.record("account", "user.reset_totp", args.username)
    print(f"TOTP of {args.username} removed; it signs in with its password alone until enrolled")
    return 0


# -- roles --------------------------------------------------------------------------------


async def _roles_list(s: AdminSession, args: argparse.Namespace) -> int:
    roles = s.identity.list_roles(s.operator, s.operator.tenant)
    _table(
        [
            [
                r.name,
                "built-in" if r.tenant is None else "custom",
                ", ".join(sorted(p.value for p in r.permissions)),
            ]
            for r in roles
        ],
        ["ROLE", "KIND", "PERMISSIONS"],
    )
    return 0


async def _roles_add(s: AdminSession, args: argparse.Namespace) -> int:
    role = await s.identity.create_role(s.operator, s.operator.tenant, args.name, args.permission)
    perms = sorted(p.value for p in role.permissions)
    await s.record("authorization", "role.create", role.name, {"permissions": perms})
    print(f"role {role.name} created: {', '.join(perms)}")
    return 0


async def _roles_assign(s: AdminSession, args: argparse.Namespace) -> int:
    added = await s.identity.assign_role(s.operator, args.username, args.role, args.scope)
    await s.record(
        "authorization", "role.assign", args.username,
        {"role": args.role, "scope": args.scope, "changed": added},
    )  # fmt: skip
    where = args.scope or "the whole tenant"
    print(f"{args.username} {'now has' if added else 'already had'} {args.role} over {where}")
    return 0


async def _roles_revoke(s: AdminSession, args: argparse.Namespace) -> int:
    removed = await s.identity.revoke_role(s.operator, args.username, args.role, args.scope)
    await s.record(
        "authorization", "role.revoke", args.username,
        {"role": args.role, "scope": args.scope, "changed": removed},
    )  # fmt: skip
    print(f"{args.username} {'no longer has' if removed else 'did not have'} {args.role}")
    return 0


# -- API keys -----------------------------------------------------------------------------


async def _keys_list(s: AdminSession, args: argparse.Namespace) -> int:
    keys = await s.identity.list_api_keys(s.operator, username=args.user)
    now = datetime.now(UTC)
    _table(
        [
            [
                k.id,
                k.name,
                "revoked" if k.revoked_at else ("expired" if k.expires_at <= now else "live"),
                ", ".join(sorted(p.value for p in k.permissions)),
                k.scope or "*",
                _when(k.expires_at),
                _when(k.last_used_at),
            ]
            for k in keys
        ],
        ["ID", "NAME", "STATE", "PERMISSIONS", "SCOPE", "EXPIRES", "LAST USED"],
    )
    return 0


async def _keys_add(s: AdminSession, args: argparse.Namespace) -> int:
    owner = s.identity.principal_of(args.user)
    token, info = await s.identity.create_api_key(
        owner, args.name, args.permission, args.scope, args.days
    )
    await s.record(
        "account", "apikey.create", info.id,
        {"name": info.name, "owner": info.owner, "permissions": sorted(args.permission)},
    )  # fmt: skip
    print(f"API key {info.id} ({info.name}) for {info.owner}, expires {_when(info.expires_at)}")
    print(f"key (shown once, send as 'Authorization: Bearer ...'): {token}")
    return 0


async def _keys_revoke(s: AdminSession, args: argparse.Namespace) -> int:
    await s.identity.revoke_api_key(s.operator, args.key_id)
    await s.record("account", "apikey.revoke", args.key_id)
    print(f"API key {args.key_id} revoked")
    return 0


# -- devices ------------------------------------------------------------------------------


async def _devices_list(s: AdminSession, args: argparse.Namespace) -> int:
    devices = await s.identity.list_devices(s.operator, s.operator.tenant)
    _table(
        [
            [d.name, d.prefix, "revoked" if d.revoked_at else "live", _when(d.created_at)]
            for d in devices
        ],
        ["DEVICE", "PREFIX", "STATE", "CREATED"],
    )
    return 0


async def _devices_add(s: AdminSession, args: argparse.Namespace) -> int:
    token, info = await s.identity.create_device(
        s.operator, s.operator.tenant, args.name, args.prefix
    )
    await s.record("account", "device.create", info.name, {"prefix": info.prefix})
    print(f"device {info.name} may publish under {info.prefix}")
    print(f"credential (shown once, send as 'Authorization: Bearer ...'): {token}")
    return 0


async def _devices_revoke(s: AdminSession, args: argparse.Namespace) -> int:
    await s.identity.revoke_device(s.operator, s.operator.tenant, args.name)
    await s.record("account", "device.revoke", args.name)
    print(f"device {args.name} revoked; a running server refuses it within a second")
    return 0


# -- tenants ------------------------------------------------------------------------------


async def _tenants_list(s: AdminSession, args: argparse.Namespace) -> int:
    _table(
        [
            [t.name, t.kind.value, ", ".join(t.roots) or "-", _when(t.created_at)]
            for t in s.identity.tenants()
        ],
        ["TENANT", "KIND", "ROOTS", "CREATED"],
    )
    return 0


async def _tenants_add(s: AdminSession, args: argparse.Namespace) -> int:
    from kiln.security.secrets import generate_password

    password = generate_password(username=args.admin) if args.admin else None
    tenant = await s.identity.create_tenant(
        s.operator, args.name, args.kind, args.root,
        admin_username=args.admin, admin_password=password,
    )  # fmt: skip
    await s.record(
        "configuration", "tenant.create", tenant.name,
        {"kind": tenant.kind.value, "roots": list(tenant.roots), "admin": args.admin},
    )  # fmt: skip
    print(f"tenant {tenant.name} ({tenant.kind.value}) created")
    if args.admin:
        print(f"administrator {args.admin}, password (shown once): {password}")
    return 0


# -- commands that need no platform -------------------------------------------------------


def _tls_self_signed(args: argparse.Namespace) -> int:
    from kiln.security.certs import generate_self_signed

    hosts = args.host or ["localhost", "127.0.0.1"]
    fp = generate_self_signed(
        args.cert, args.key, hosts=hosts, now=datetime.now(UTC), days=args.days
    )
    print(f"wrote {args.cert} and {args.key} (mode 0600) for {', '.join(hosts)}")
    print(f"SHA-256 fingerprint: {fp}")
    print("serve with: http: {tls_cert: ..., tls_key: ...} in the plant configuration")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from kiln.security.audit import verify_main
    from kiln.security.audit.key import load_audit_keys

    settings = settings_of(args)
    sec = settings.section(SecuritySettings)
    url = sec.audit_url  # None: the SQLite file in the data directory
    try:
        keys = load_audit_keys(settings.data_dir, sec.audit_key_file, create=False)
    except (OSError, ValueError, ConfigError) as err:
        print(f"kiln audit verify: cannot read the audit key: {err}", file=sys.stderr)
        return 2
    anchors: Path | None = args.anchors or sec.audit_anchor_dir
    return verify_main(
        settings.data_dir, url, key=keys.secret, previous_keys=keys.previous, anchors_dir=anchors
    )


def _audit_move_key(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from kiln.security.audit import AuditError
    from kiln.security.audit.key import load_audit_keys
    from kiln.security.audit.move import move_key

    settings = settings_of(args)
    try:
        sec = settings.section(SecuritySettings)
        keys = load_audit_keys(settings.data_dir, sec.audit_key_file, create=False)
        print(move_key(sec.audit_url_in(settings.data_dir), settings.data_dir, keys))
    except (OSError, ValueError, ConfigError, AuditError, SQLAlchemyError) as err:
        print(f"kiln audit move-key: {err}", file=sys.stderr)
        return 2
    return 0
