"""Organisations of the value chain: the own enterprise, its customers and its suppliers, each
with the people to call.

An organisation belongs to one security **tenant**: the enterprise is the tenant that owns the
namespace; a customer or supplier is a partner tenant of it, and its users see only what the
enterprise shares with that tenant (`kiln.security.tenancy`). The organisation names the tenant
by its name; that the tenant exists is for the store to check, not this module.

Pure: no I/O. Models are frozen and refuse unknown fields; every refusal says which field and
which value is wrong.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# An organisation code: one path segment, the same rule as material and order codes, so it
# fits in URLs and topics as it is. Written out because domains meet only through each one's
# package module (pyproject's contracts).
CODE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"

# A security tenant's name, as `kiln.security.guards.TENANT_NAME` accepts it.
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

# Deliberately loose: one '@', something on both sides, a dot in the domain. Whether a mailbox
# exists is only known by writing to it; a stricter pattern refuses real addresses.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"

# International or local notation: an optional '+', then digits with the usual separators.
PHONE_PATTERN = r"^\+?[0-9][0-9 ()./\-]{2,31}$"

Name = Annotated[str, Field(min_length=1, max_length=256)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class OrganisationKind(StrEnum):
    ENTERPRISE = "enterprise"
    CUSTOMER = "customer"
    SUPPLIER = "supplier"


class Contact(_Frozen):
    """A person at an organisation; `role` is free text ("buyer", "quality", "dispatch")."""

    name: Name
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    role: str | None = Field(default=None, min_length=1, max_length=128)


class Organisation(_Frozen):
    """The enterprise, a customer or a supplier, of security tenant `tenant`."""

    code: str = Field(pattern=CODE_PATTERN)
    name: Name
    kind: OrganisationKind
    tenant: str = Field(pattern=TENANT_PATTERN, description="the tenant it is or is a partner of")
    contacts: tuple[Contact, ...] = ()
    address: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _distinct_contacts(self) -> Self:
        # Two contacts of one name cannot be told apart on a form or in an import.
        seen: set[str] = set()
        for contact in self.contacts:
            key = contact.name.casefold()
            if key in seen:
                raise ValueError(f"organisation {self.code!r} lists contact {contact.name!r} twice")
            seen.add(key)
        return self


class PartnerError(ValueError):
    """A set of organisations that does not fit together; the message names the codes."""


def index_organisations(organisations: tuple[Organisation, ...]) -> dict[str, Organisation]:
    """The organisations by code. PartnerError if a code repeats, or if a tenant has more than
    one enterprise (a tenant is one enterprise; its partners are other tenants)."""
    by_code: dict[str, Organisation] = {}
    enterprise_of: dict[str, str] = {}
    problems: list[str] = []
    for org in organisations:
        if org.code in by_code:
            problems.append(f"organisation code {org.code!r} is used twice")
            continue
        by_code[org.code] = org
        if org.kind is OrganisationKind.ENTERPRISE:
            other = enterprise_of.setdefault(org.tenant, org.code)
            if other != org.code:
                problems.append(
                    f"tenant {org.tenant!r} has two enterprises: {other!r} and {org.code!r}"
                )
    if problems:
        raise PartnerError("; ".join(problems))
    return by_code
