"""API v1 routes of scoring: the backtest of a scoring model, the learned model."""
from django.urls import path

from . import api

urlpatterns = [
    path("scoring/models/<int:pk>/backtest/", api.ScoringModelBacktestView.as_view(), name="scoring-model-backtest"),
    # The learned model (issue 16 points 3–5).
    path("scoring/predictive/", api.PredictiveStatusView.as_view(), name="scoring-predictive"),
    path("scoring/predictive/train/", api.PredictiveTrainView.as_view(), name="scoring-predictive-train"),
    path("scoring/predictive/suggest/", api.PredictiveSuggestView.as_view(), name="scoring-predictive-suggest"),
]
