"""Webhook services: emitting events (`emit.py`), delivering them (`delivery.py`), managing endpoints (`endpoints.py`)."""
