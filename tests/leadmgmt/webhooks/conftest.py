"""Webhook fixtures: the real HTTP receiver."""
from tests.support.webhooks import webhook_receiver  # noqa: F401 (fixture)
