"""The broker transport survives a Redis restart: closing a channel whose connection is gone leaves the
unacknowledged messages to the visibility timeout instead of ending the worker (leadmgmt/broker.py)."""
from __future__ import annotations

import logging

from kombu import Connection

from leadmgmt.broker import QoS, Transport
from leadmgmt.celery import app


def test_the_app_uses_the_repaired_transport_over_redis_urls():
    with app.connection_for_write() as conn:
        assert conn.transport_cls == "leadmgmt.broker:Transport"
        assert isinstance(conn.transport, Transport)
        assert conn.transport.driver_type == "redis"  # Celery's Redis-specific behaviour still applies


def test_closing_with_the_broker_gone_keeps_the_worker_alive(settings, caplog):
    conn = Connection(settings.CELERY_BROKER_URL, transport="leadmgmt.broker:Transport")
    channel = conn.channel()
    qos = channel.qos
    assert isinstance(qos, QoS)
    qos._delivered["tag-1"] = object()  # a delivered, unacknowledged message
    channel._pool = None
    client, channel.connection.client = channel.connection.client, None  # as kombu leaves it once Redis is gone
    try:
        with caplog.at_level(logging.WARNING, logger="leadmgmt.broker"):
            qos.restore_unacked_once()  # the stock QoS raises AttributeError here: "Unrecoverable error", exit
    finally:
        channel.connection.client = client
        qos._delivered.clear()
        conn.release()
    assert "left for the visibility timeout" in caplog.text
