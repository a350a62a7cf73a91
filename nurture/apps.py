"""App config for nurture: sequences, steps, enrollments and messages."""
from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
