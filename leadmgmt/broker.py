"""The Celery broker transport: kombu's Redis transport with one repair, for a Redis restart.

When the broker connection drops, the worker's consumer closes its channel, and kombu's Redis QoS then tries
to put the messages it had delivered but not yet acknowledged (acks_late tasks in flight) back on their queue,
on that same dead connection. kombu raises `AttributeError` there (the connection object is already gone; see
celery/kombu issue 582) and the worker exits with "Unrecoverable error" instead of reconnecting: a Redis
restart took the workers down with it. Here that restore gives up quietly when the broker cannot be reached:
the messages stay in Redis's unacked set, which the transport re-queues after the visibility timeout
(CELERY_BROKER_TRANSPORT_OPTIONS), and the worker reconnects and goes on. The capture pipeline does not even
wait for that: its sweep re-enqueues leads still pending after CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS.

Selected by `CELERY_BROKER_TRANSPORT = "leadmgmt.broker:Transport"`; the broker URL stays `redis://…`.
"""
from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    def restore_unacked_once(self, stderr=None):
        try:
            return super().restore_unacked_once(stderr)
        except (AttributeError, RedisError, OSError) as exc:
            log.warning("broker unreachable while closing the channel: %s unacknowledged message(s) left for the "
                        "visibility timeout to restore (%r)", len(self._delivered), exc)
            return None


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
