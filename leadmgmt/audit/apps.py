"""App config for the audit trail."""
from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "leadmgmt.audit"
    label = "audit"
    verbose_name = "Audit trail"
