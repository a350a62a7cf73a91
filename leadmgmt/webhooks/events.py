"""Events the webhooks app sends upward (ARCHITECTURE.md, "Events that cross floors")."""
from django.dispatch import Signal

# An endpoint was disabled for failing too long, inside the transaction that disabled it.
# kwargs: tenant, endpoint, admin_ids (the tenant's active admins' user ids, already emailed).
webhook_endpoint_disabled = Signal()
