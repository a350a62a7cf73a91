"""API v1 routes of the leads app: intake, signals, leads."""
from django.urls import path

urlpatterns: list = []
