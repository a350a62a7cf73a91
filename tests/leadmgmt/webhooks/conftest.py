"""Webhook fixtures: the real HTTP receiver (on 127.0.0.1, which these tests allow as an endpoint)."""
import pytest

from tests.support.webhooks import webhook_receiver  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
