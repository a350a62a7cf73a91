"""API v1 routes of scoring."""
from django.urls import path

from . import api

urlpatterns = [
    # The learned model (issue 16 points 3–4).
    path("scoring/predictive/", api.PredictiveStatusView.as_view(), name="scoring-predictive"),
    path("scoring/predictive/train/", api.PredictiveTrainView.as_view(), name="scoring-predictive-train"),
    path("scoring/predictive/suggest/", api.PredictiveSuggestView.as_view(), name="scoring-predictive-suggest"),
]
