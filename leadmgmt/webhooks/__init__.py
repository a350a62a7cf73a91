"""Outbound webhooks: a tenant's endpoints, the outbox of events, signed deliveries with retries."""
