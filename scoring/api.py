"""API v1 of scoring: the backtest of a scoring model on the tenant's closed history."""
from __future__ import annotations

from django.db import DatabaseError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, TenantApiView
from leadmgmt.tenancy.roles import SCORING_BACKTEST, principal_may

from .backtest import BacktestRangeError, backtest_range_parse, model_backtest
from .models import ScoringModel
from .serializers import BacktestSerializer


class ScoringModelBacktestView(TenantApiView):
    """`GET /api/v1/scoring/models/{id}/backtest/?from=&to=`: how the model ranks the tenant's won leads."""

    @extend_schema(
        operation_id="scoring_models_backtest", summary="Backtest a scoring model on closed leads",
        description="Scores the tenant's closed leads (those with an outcome: won is a conversion, lost and "
        "disqualified are not), each as the model (published, draft or retired) would have scored it at its close "
        "date, writing nothing, and answers the AUC, the count and conversion rate per band, the lift of the top "
        "decile, MQL precision and recall at the model's auto-MQL bands and a calibration table by score decile. "
        "`from`/`to` (YYYY-MM-DD, inclusive, the tenant's time zone) limit the close dates; both blank: the whole "
        "history. No closed lead in the range is a 200 with `count` 0, null metrics and a `message`. Admins, "
        "marketing ops and API keys with `leads:read`; another tenant's model is a 404.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The scoring model's id."),
                    OpenApiParameter("from", OpenApiTypes.DATE, description="First close date (YYYY-MM-DD), inclusive."),
                    OpenApiParameter("to", OpenApiTypes.DATE, description="Last close date (YYYY-MM-DD), inclusive.")],
        responses={200: BacktestSerializer, **COMMON_ERRORS}, tags=["scoring"])
    def get(self, request, pk: int):
        if not principal_may(action=SCORING_BACKTEST, membership=getattr(request, "membership", None),
                             api_key=getattr(request, "api_key", None)):
            raise exceptions.PermissionDenied("Backtests are for admins and marketing ops.")
        model = ScoringModel.objects.for_tenant(request.tenant).filter(pk=pk).first()
        if model is None:
            raise Http404("No such scoring model.")
        try:
            span = backtest_range_parse(start=request.query_params.get("from"), end=request.query_params.get("to"))
        except BacktestRangeError as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        try:
            report = model_backtest(model=model, span=span)
        except DatabaseError as exc:  # a draft the database cannot evaluate (never a 500): say what it refused
            raise exceptions.ValidationError(
                {"model": [f"The backtest could not be computed: {str(exc).strip().splitlines()[0]}"]}) from exc
        return Response(BacktestSerializer(report).data)
