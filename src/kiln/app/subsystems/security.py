"""Security: identities, roles, tenants, credentials and the tamper-evident audit log."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiln.api.subsystem import BuildContext, Commands, Mount, SettingsSection, Subsystem
from kiln.app import cli_admin
from kiln.core.platform import Platform, Service, Stage
from kiln.security.settings import SecuritySettings

# The services (their stores), the audit log and the routers are imported where they are used:
# every `kiln` command reads this declaration (its settings section and commands).


def _services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    from kiln.security.audit.setup import audit_log_from
    from kiln.security.service import Identity

    if not ctx.role.runs(Stage.STORAGE):
        return ()  # a sources process: not even built (the audit log's setup warns about keys)
    data_dir = ctx.settings.data_dir
    sec = ctx.settings.section(SecuritySettings)
    identity = Identity(
        sec.identity_url_in(data_dir),
        data_dir=data_dir,
        clock=ctx.clock,
        password_settings=ctx.password_settings,
        access_ttl_s=sec.access_ttl_s,
        refresh_ttl_s=sec.refresh_ttl_s,
        max_login_failures=sec.max_login_failures,
        lockout_s=sec.lockout_s,
    )
    return ((identity, Stage.STORAGE), (audit_log_from(sec, data_dir), Stage.STORAGE))


class AuditCollector(Collector):
    """Whether the audit chain verifies, and how its checks go."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        from kiln.security.audit import AuditLog

        state = self.platform.service(AuditLog).integrity if self.platform.has(AuditLog) else None
        if state is None:
            return
        intact = not state.problems and state.error is None
        yield GaugeMetricFamily(
            "kiln_audit_integrity_ok",
            "1 while the audit chain verifies, 0 once a check found a break or could not read it",
            value=1.0 if intact else 0.0,
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_breaks", "distinct audit chain problems found", value=state.breaks
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_checks", "audit chain checks completed", value=state.checks
        )
        yield CounterMetricFamily(
            "kiln_audit_integrity_errors", "audit chain checks that could not read the log",
            value=state.errors,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "kiln_audit_verified_seq", "newest audit record verified", value=state.verified_seq
        )
        yield GaugeMetricFamily(
            "kiln_audit_integrity_check_seconds_last",
            "duration of the last audit chain check",
            value=state.last_duration_s,
        )


def _first_start(platform: Platform) -> None:
    from kiln.security.service import Identity

    first = platform.service(Identity).bootstrap_result
    if first is not None:
        # Printed once to the console, on purpose not logged: logs are kept and shipped.
        print(
            f"\nFirst start: sign in as {first.username!r} with password "
            f"{first.password}\n(also in {first.path}, mode 0600; change it, then "
            "delete the file)\n",
            flush=True,
        )


def _commands(commands: Commands) -> None:
    cli_admin.add_parsers(commands)


SUBSYSTEM = Subsystem(
    name="security",
    sections=(SettingsSection("security", SecuritySettings, SecuritySettings),),
    services=_services,
    routers=tuple(
        Mount(f"kiln.api.routers.{name}")
        for name in ("auth", "users", "credentials", "tenants", "audit")
    ),
    collectors=lambda platform: (AuditCollector(platform),),
    started=_first_start,
    cli=_commands,
)
