"""Security: identities, roles and permissions, tenants, device credentials, audit log.

Built to IEC 62443-4-2 component requirements (CR 1.1 identification and authentication,
CR 2.1 authorization enforcement, CR 2.8 auditable events, CR 3.1 communication integrity).
"""
