"""API v1 of scoring: the backtest of a scoring model on the tenant's closed history
(`/api/v1/scoring/models/{id}/backtest/`), and the tenant's learned model (`/api/v1/scoring/predictive/`: its
status, metrics and weights; `…/train/`: train it in a worker; `…/suggest/`: a points draft from it). Views call the
services and selectors only.

Who may (the matrix of leadmgmt.tenancy.roles): backtests, admins and marketing ops (`scoring.backtest`, keys with
`leads:read`); the learned model, managers, marketing ops and admins read it (`predictive.view`, keys with
`predictive:read`), marketing ops and admins train it and draft from it (`predictive.train`, keys with
`predictive:train`).
"""
from __future__ import annotations

from django.db import DatabaseError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, ERRORS_RESPONSE, TenantApiView, actor_for
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.roles import (
    PREDICTIVE_TRAIN,
    PREDICTIVE_VIEW,
    SCORING_BACKTEST,
    principal_may,
)
from leads.api import LeadApiView

from .backtest import BacktestRangeError, backtest_range_parse, model_backtest
from .models import PredictiveStatus, ScoringModel
from .predictive.selectors import predictive_job_dict, predictive_status
from .predictive.services import predictive_train_request
from .predictive.suggest import predictive_draft_suggest
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
            blank = {name: ["Give a date (YYYY-MM-DD), or leave the parameter out for an open end."]
                     for name in ("from", "to")
                     if name in request.query_params and not request.query_params[name].strip()}
            if blank:  # the schema's `format: date`; the admin page's form may leave its fields empty, the API not
                raise BacktestRangeError(blank)
            span = backtest_range_parse(start=request.query_params.get("from"), end=request.query_params.get("to"))
        except BacktestRangeError as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        try:
            report = model_backtest(model=model, span=span)
        except DatabaseError as exc:  # a draft the database cannot evaluate (never a 500): say what it refused
            raise exceptions.ValidationError(
                {"model": [f"The backtest could not be computed: {str(exc).strip().splitlines()[0]}"]}) from exc
        return Response(BacktestSerializer(report).data)


class PredictiveJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=PredictiveStatus.choices)
    message = serializers.CharField()
    requested_at = serializers.DateTimeField()
    trained_at = serializers.DateTimeField(allow_null=True)
    closed_count = serializers.IntegerField()
    won_count = serializers.IntegerField()


class PredictiveFeatureSerializer(serializers.Serializer):
    kind = serializers.CharField()
    key = serializers.CharField()
    value = serializers.CharField(allow_blank=True)
    label = serializers.CharField()
    weight = serializers.FloatField()


class PredictiveStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[*PredictiveStatus.values, "none"],
                                     help_text="ready once a model is current; else the last job's status.")
    current_version = serializers.IntegerField(allow_null=True)
    trained_at = serializers.DateTimeField(allow_null=True)
    training_size = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                          help_text="closed and won leads the current model learned from.")
    metrics = serializers.DictField(help_text="Held-out (newest 20 % by close date): auc, log_loss, brier, "
                                              "calibration_error, points_auc, base_rate, test_size.")
    calibration = serializers.DictField(child=serializers.FloatField(), allow_null=True)
    intercept = serializers.FloatField(allow_null=True)
    features = PredictiveFeatureSerializer(many=True)
    blend = serializers.IntegerField()
    minimums = serializers.DictField(child=serializers.IntegerField())
    last_job = PredictiveJobSerializer(allow_null=True)


class PredictiveStatusView(LeadApiView):
    """`GET /api/v1/scoring/predictive/`: the current learned model and the last training job."""

    required_scopes = {"GET": ApiScope.PREDICTIVE_READ}

    @extend_schema(operation_id="scoring_predictive_retrieve", summary="The learned scoring model",
                   description="Status, current version, held-out metrics (time-ordered split), trained_at, training "
                   "size, every feature with its weight (largest first) and the last training job. Managers, "
                   "marketing ops, admins; API keys with `predictive:read`.",
                   responses={200: PredictiveStatusSerializer, **COMMON_ERRORS}, tags=["scoring"])
    def get(self, request):
        if not self.viewer().may(PREDICTIVE_VIEW):
            raise exceptions.PermissionDenied("The learned model is for managers, marketing ops and admins.")
        return Response(predictive_status(tenant=request.tenant))


class PredictiveTrainView(LeadApiView):
    """`POST /api/v1/scoring/predictive/train/`: train the learned model in a worker (202 with the job)."""

    required_scopes = {"POST": ApiScope.PREDICTIVE_TRAIN}

    @extend_schema(operation_id="scoring_predictive_train", summary="Train the learned scoring model",
                   description="Starts training from the tenant's closed leads in a worker and answers 202 with the "
                   "job (`id`); a training already running is answered with its job (asking twice trains once). "
                   "With fewer closed or won leads than the tenant's minimums: 409 saying how many more are needed. "
                   "When it is done every lead is re-scored with it. Marketing ops, admins; API keys with "
                   "`predictive:train`. No body.",
                   request=None, responses={202: PredictiveJobSerializer, 409: ERRORS_RESPONSE, **COMMON_ERRORS},
                   tags=["scoring"])
    def post(self, request):
        if not self.viewer().may(PREDICTIVE_TRAIN):
            raise exceptions.PermissionDenied("Training the learned model is for marketing ops and admins.")
        job, _created = predictive_train_request(tenant=request.tenant, actor=actor_for(request))
        if job.status == PredictiveStatus.REFUSED:
            body = {"errors": {"detail": [job.message]}, "job": predictive_job_dict(job),
                    "closed": job.closed_count, "won": job.won_count, **job.metrics}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(predictive_job_dict(job), status=status.HTTP_202_ACCEPTED)


class SuggestInSerializer(serializers.Serializer):
    mql_share = serializers.FloatField(required=False, min_value=0.01, max_value=0.9,
                                       help_text="Share of leads the MQL band should hold (default: today's share).")


class SuggestedDraftSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    notes = serializers.CharField()
    mql_threshold = serializers.IntegerField()


class PredictiveSuggestView(LeadApiView):
    """`POST /api/v1/scoring/predictive/suggest/`: a draft points model from the learned model."""

    required_scopes = {"POST": ApiScope.PREDICTIVE_TRAIN}

    @extend_schema(operation_id="scoring_predictive_suggest", summary="Suggest a draft scoring model",
                   description="Creates a draft ScoringModel from the current learned model: the rule kinds marketing "
                   "ops edit with learned points, new rules for the attributes that matter, and the MQL band moved "
                   "to the tenant's MQL capacity (`mql_share`, default: today's share of MQL-or-above leads). "
                   "Review it with the backtest and publish it as usual. 400 when no model is trained yet. "
                   "Marketing ops, admins; API keys with `predictive:train`.",
                   request=SuggestInSerializer, responses={201: SuggestedDraftSerializer, **COMMON_ERRORS},
                   tags=["scoring"])
    def post(self, request):
        if not self.viewer().may(PREDICTIVE_TRAIN):
            raise exceptions.PermissionDenied("Suggesting a draft is for marketing ops and admins.")
        data = self.valid(SuggestInSerializer)
        draft = predictive_draft_suggest(tenant=request.tenant, actor=actor_for(request),
                                         mql_share=data.get("mql_share"))
        return Response({"id": draft.pk, "version": draft.version, "name": draft.name, "status": draft.status,
                         "notes": draft.notes, "mql_threshold": draft.mql_threshold}, status=status.HTTP_201_CREATED)
