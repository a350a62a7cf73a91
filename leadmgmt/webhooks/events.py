"""Events the webhooks app sends upward (ARCHITECTURE.md, "Events that cross floors")."""
from django.dispatch import Signal

# An endpoint was disabled for failing too long, inside the transaction that disabled it.
# kwargs: tenant, endpoint, admin_ids (the members who manage webhooks), reason.
webhook_endpoint_disabled = Signal()
