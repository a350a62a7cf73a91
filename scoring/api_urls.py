"""API v1 routes of scoring: the backtest of a scoring model."""
from django.urls import path

from . import api

urlpatterns = [
    path("scoring/models/<int:pk>/backtest/", api.ScoringModelBacktestView.as_view(), name="scoring-model-backtest"),
]
