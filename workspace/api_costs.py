"""Costs and the funnel plan API (issue 16 points 7 and 8): `GET/POST /api/v1/costs/` (source and campaign costs per
month: list with filters; one object or a list of up to 1,000, upserted by month, source and campaign) and
`GET/PUT /api/v1/funnel-plan/` (the tenant's plan, what a month needs and the measured rates).

Who may: `costs.view` / `costs.edit` and `plan.view` / `plan.edit` of the matrix (managers, admins and marketing
ops read; admins and marketing ops write), API keys with `costs:read` / `costs:write` and `plan:read` /
`plan:write`. A batch of costs is all or nothing: any invalid item is a 400 naming it (`"3.amount"`), nothing written.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from leadmgmt.api import (
    COMMON_ERRORS,
    ERRORS_RESPONSE,
    PaginatedMixin,
    TenantApiView,
    TextField,
    actor_for,
    flat_errors,
    page,
)
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.roles import COSTS_EDIT, COSTS_VIEW, PLAN_EDIT, PLAN_VIEW, principal_may
from leads.currencies import currency_clean

from .funnel_plan import RATE_FIELDS, plan_report
from .models import FunnelPlan, PlanPeriod, SourceCost
from .services.funnel_plan import funnel_plan_save
from .services.source_costs import COST_AMOUNT_MAX, CostInput, source_costs_upsert

MONTH_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])(-01)?$"  # 1900-01 … 2999-12, or its first day
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})(?:-01)?$")
MONTH_HELP = "The month: `YYYY-MM` or its first day `YYYY-MM-01`."


def _may(request, action: str, message: str) -> None:
    if not principal_may(action=action, membership=getattr(request, "membership", None),
                         api_key=getattr(request, "api_key", None)):
        raise exceptions.PermissionDenied(message)


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN, "example": "2026-11"})
class MonthField(serializers.Field):
    """`2026-11` or `2026-11-01` → date(2026, 11, 1); a day other than the first is refused."""

    default_error_messages = {"invalid": "Give the month as YYYY-MM (or its first day, YYYY-MM-01)."}

    def to_internal_value(self, data):
        match = MONTH_RE.match(data) if isinstance(data, str) else None
        if match is None:
            self.fail("invalid")
        year, month = int(match.group(1)), int(match.group(2))
        if not (1900 <= year <= 2999 and 1 <= month <= 12):
            self.fail("invalid")
        return dt.date(year, month, 1)

    def to_representation(self, value):
        return value.strftime("%Y-%m")


@extend_schema_field({"oneOf": [
    {"type": "string", "format": "decimal", "pattern": r"^\d{1,12}(\.\d{1,2})?$", "example": "4200.00"},
    {"type": "number", "minimum": 0, "maximum": 999999999999.99, "multipleOf": 0.01}]})
class MoneyField(serializers.DecimalField):
    """An amount of money (14 digits, 2 after the point), as a JSON string (`"4200.00"`) or number (`4200`)."""

    def __init__(self, *, min_value=Decimal(0), **kwargs):
        super().__init__(max_digits=14, decimal_places=2, min_value=min_value, max_value=COST_AMOUNT_MAX, **kwargs)


@extend_schema_field({"oneOf": [
    {"type": "string", "format": "decimal", "pattern": r"^(0(\.\d{1,4})?|1(\.0{1,4})?)$", "example": "0.15"},
    {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1}]})
class RateField(serializers.DecimalField):
    """A stage rate in (0, 1], as a JSON string (`"0.15"`) or number (`0.15`), at most 4 places."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=5, decimal_places=4, min_value=Decimal("0.0001"), max_value=Decimal(1),
                         required=False, **kwargs)
        self.error_messages["min_value"] = "A rate is more than 0 (e.g. 0.15 for 15 %)."
        self.error_messages["max_value"] = "A rate is at most 1 (e.g. 0.15 for 15 %)."


class CurrencyField(TextField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            code = currency_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        if not code:
            raise serializers.ValidationError("Enter an ISO 4217 currency code, e.g. USD or EUR.")
        return code


class CostInSerializer(serializers.Serializer):
    """One month's cost of a source, or of one campaign of it."""

    month = MonthField(help_text=MONTH_HELP)
    source = TextField(max_length=64, help_text="As leads carry it (their `source`), e.g. paid_search.")
    campaign = TextField(max_length=200, required=False, allow_blank=True, default="",
                         help_text="Blank or left out: the whole source (spend on no one campaign).")
    amount = MoneyField()
    currency = CurrencyField(max_length=3, help_text="ISO 4217, e.g. EUR.")

    def validate_source(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("Name the source, e.g. paid_search.")
        return value

    def validate_campaign(self, value):
        return value.strip()

    def to_input(self) -> CostInput:
        data = self.validated_data
        return CostInput(month=data["month"], source=data["source"], campaign=data.get("campaign", ""),
                         amount=data["amount"], currency=data["currency"])


class CostOutSerializer(serializers.ModelSerializer):
    month = MonthField(read_only=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = SourceCost
        fields = ["id", "month", "source", "campaign", "amount", "currency", "created_at", "updated_at"]
        read_only_fields = fields


class CostItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request (0 for a single object).")
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class CostBatchResultSerializer(serializers.Serializer):
    results = CostItemResultSerializer(many=True)
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class _AnyText(serializers.Field):
    """A filter's text as sent: one no row can match (too long, a NUL character) simply matches nothing."""

    allow_blank = True  # `?campaign=` is a value: the whole-source costs

    def to_internal_value(self, data):
        return str(data).strip()


class CostFilterSerializer(serializers.Serializer):
    month_from = MonthField(required=False)
    month_to = MonthField(required=False)
    source = _AnyText(required=False)
    campaign = _AnyText(required=False)

    def to_internal_value(self, data):
        # A month filter sent without a value is a mistake (DRF would read it as "not given").
        blank = {name: ["Give a month (YYYY-MM) or leave the filter out."] for name in ("month_from", "month_to")
                 if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


COST_EXAMPLE = {"month": "2026-11", "source": "paid_search", "campaign": "brand-q4", "amount": "4200.00",
                "currency": "EUR"}


class CostListView(PaginatedMixin, TenantApiView):
    """`/api/v1/costs/`: list (GET), upsert one or a list (POST)."""

    required_scopes = {"POST": ApiScope.COSTS_WRITE, "*": ApiScope.COSTS_READ}

    @extend_schema(
        operation_id="costs_list", summary="List source and campaign costs",
        description="The tenant's costs per month, newest month first, paginated. Filters: `month_from`, `month_to` "
        "(YYYY-MM), `source`, `campaign` (empty: the whole-source costs).",
        parameters=[OpenApiParameter("month_from", str, pattern=MONTH_PATTERN, description=MONTH_HELP),
                    OpenApiParameter("month_to", str, pattern=MONTH_PATTERN, description=MONTH_HELP),
                    OpenApiParameter("source", str), OpenApiParameter("campaign", str, allow_blank=True)],
        responses={200: CostOutSerializer(many=True), **COMMON_ERRORS}, tags=["costs"])
    def get(self, request):
        _may(request, COSTS_VIEW, "Source costs are for managers, admins and marketing ops.")
        filters = CostFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        rows = SourceCost.objects.for_tenant(request.tenant)
        if data.get("month_from"):
            rows = rows.filter(month__gte=data["month_from"])
        if data.get("month_to"):
            rows = rows.filter(month__lte=data["month_to"])
        texts = [data[name] for name in ("source", "campaign") if name in data]
        if any("\x00" in text for text in texts):
            rows = rows.none()  # PostgreSQL stores no NUL character: no row has one
        if "source" in data:
            rows = rows.filter(source=data["source"])
        if "campaign" in data:
            rows = rows.filter(campaign=data["campaign"])
        return page(self, rows.order_by("-month", "source", "campaign", "id"), CostOutSerializer)

    @extend_schema(
        operation_id="costs_create", summary="Enter source and campaign costs",
        description="One cost object or a list of up to 1000 (`costs:write` scope). Each is upserted by (month, "
        "source, campaign): a new key is `created`, a changed amount or currency `updated`, the same values again "
        "`unchanged` (nothing written: retries are safe). All or nothing: any invalid item (or a key named twice) is a "
        "400 whose fields name it (`\"2.amount\"`), and nothing is written.",
        request=PolymorphicProxySerializer(component_name="CostBatch",
                                           serializers=[CostInSerializer, CostInSerializer(many=True)],
                                           resource_type_field_name=None, many=False),
        responses={200: CostBatchResultSerializer, **COMMON_ERRORS, 413: ERRORS_RESPONSE, 415: ERRORS_RESPONSE,
                   429: ERRORS_RESPONSE},
        examples=[OpenApiExample("One cost", value=COST_EXAMPLE, request_only=True),
                  OpenApiExample("A batch", request_only=True, value=[
                      COST_EXAMPLE, {"month": "2026-11", "source": "events", "amount": "900", "currency": "EUR"}])],
        tags=["costs"])
    def post(self, request):
        _may(request, COSTS_EDIT, "Only admins and marketing ops enter costs.")
        data = request.data
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            items, single = [data], True
        elif isinstance(data, list):
            items, single = data, False
        else:
            raise exceptions.ValidationError({"detail": ["Send a cost object or a JSON list of costs."]})
        if not items:
            raise exceptions.ValidationError({"detail": ["The list of costs is empty."]})
        if len(items) > settings.OUTCOMES_MAX_BATCH:
            raise exceptions.ValidationError(
                {"detail": [f"At most {settings.OUTCOMES_MAX_BATCH} costs per request ({len(items)} sent)."]})
        errors: dict[str, list[str]] = {}
        inputs: list[CostInput] = []
        seen: dict[tuple, int] = {}
        for index, raw in enumerate(items):
            prefix = "" if single else f"{index}."
            if not isinstance(raw, dict):
                errors[f"{index}"] = ["Each cost must be a JSON object."]
                continue
            serializer = CostInSerializer(data=raw)
            if not serializer.is_valid():
                for name, messages in flat_errors(serializer.errors).items():
                    errors[f"{prefix}{name}"] = messages
                continue
            item = serializer.to_input()
            if item.key in seen:
                errors[f"{prefix}campaign"] = [f"Item {seen[item.key]} already has this month, source and campaign."]
                continue
            seen[item.key] = index
            inputs.append(item)
        if errors:
            raise exceptions.ValidationError(errors)
        result = source_costs_upsert(tenant=request.tenant, items=inputs, actor=actor_for(request))
        return Response({"results": [{"index": i, "id": pk, "status": s} for i, (pk, s)
                                     in enumerate(zip(result.ids, result.statuses, strict=True))], **result.counts()})


# --- the funnel plan ----------------------------------------------------------------------------------------


class FunnelPlanInSerializer(serializers.Serializer):
    """The whole plan (PUT replaces it); rates left out take their defaults (seed 001's example)."""

    revenue_target = MoneyField(min_value=Decimal("0.01"),
                                error_messages={"min_value": "The revenue target must be more than 0."})
    target_period = serializers.ChoiceField(choices=PlanPeriod.choices, required=False, default=PlanPeriod.MONTH,
                                            help_text="Whether the target is per month or per quarter.")
    currency = CurrencyField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    average_contract_value = MoneyField(
        min_value=Decimal("0.01"), error_messages={"min_value": "The average contract value must be more than 0."})
    lead_to_mql = RateField(help_text="Expected share of leads that become MQLs, in (0, 1]. Default 0.15.")
    mql_to_sal = RateField(help_text="MQLs sales accepts, in (0, 1]. Default 0.5.")
    sal_to_opportunity = RateField(help_text="SALs that become opportunities, in (0, 1]. Default 0.4.")
    opportunity_to_won = RateField(help_text="Opportunities won, in (0, 1]. Default 0.25.")
    use_measured_rates = serializers.BooleanField(required=False, default=False,
                                                  help_text="Work backwards with the measured rates instead.")
    measured_months = serializers.IntegerField(required=False, default=6, min_value=1, max_value=24,
                                               help_text="The complete months the rates are measured over.")


class FunnelPlanOutSerializer(serializers.ModelSerializer):
    revenue_target = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    average_contract_value = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    lead_to_mql = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    mql_to_sal = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    sal_to_opportunity = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    opportunity_to_won = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    needed_per_month = serializers.SerializerMethodField(
        help_text="Won deals, opportunities, SALs, MQLs and leads a month needs (rounded up).")
    rates_in_use = serializers.SerializerMethodField()
    measured_rates = serializers.SerializerMethodField(help_text="Over the last `measured_months` complete months; "
                                                       "null where nothing reached the stage before.")

    class Meta:
        model = FunnelPlan
        fields = ["revenue_target", "target_period", "currency", "average_contract_value", *RATE_FIELDS,
                  "use_measured_rates", "measured_months", "needed_per_month", "rates_in_use", "measured_rates",
                  "updated_at"]
        read_only_fields = fields

    def get_needed_per_month(self, plan) -> dict[str, int]:
        return self.context["report"].needs.whole()

    def get_rates_in_use(self, plan) -> dict[str, str]:
        return {name: str(value.quantize(Decimal("0.0001"))) for name, value in self.context["report"].rates.items()}

    def get_measured_rates(self, plan) -> dict[str, str | None]:
        return {name: None if value is None else str(value)
                for name, value in self.context["report"].measured_rates.items()}


class FunnelPlanView(TenantApiView):
    """`/api/v1/funnel-plan/`: the tenant's one plan."""

    required_scopes = {"PUT": ApiScope.PLAN_WRITE, "*": ApiScope.PLAN_READ}

    def _answer(self, request, plan: FunnelPlan) -> Response:
        report = plan_report(tenant=request.tenant, plan=plan)
        return Response(FunnelPlanOutSerializer(plan, context={"report": report}).data)

    @extend_schema(operation_id="funnel_plan_retrieve", summary="The funnel plan",
                   description="The plan, what a month needs (worked backwards: target / ACV = won deals, / win "
                   "rate = opportunities, … leads), the rates in use and the measured ones. 404 until a plan is set.",
                   responses={200: FunnelPlanOutSerializer, **COMMON_ERRORS}, tags=["funnel plan"])
    def get(self, request):
        _may(request, PLAN_VIEW, "The funnel plan is for managers, admins and marketing ops.")
        plan = FunnelPlan.objects.for_tenant(request.tenant).first()
        if plan is None:
            raise exceptions.NotFound("No funnel plan yet: PUT one.")
        return self._answer(request, plan)

    @extend_schema(operation_id="funnel_plan_update", summary="Set the funnel plan",
                   description="Replaces the plan (creates it the first time). Rates are fractions in (0, 1]; the "
                   "target and the average contract value are more than 0. The same values again change nothing.",
                   request=FunnelPlanInSerializer, responses={200: FunnelPlanOutSerializer, **COMMON_ERRORS},
                   tags=["funnel plan"])
    def put(self, request):
        _may(request, PLAN_EDIT, "Only admins and marketing ops change the funnel plan.")
        data = self.valid(FunnelPlanInSerializer)
        plan, _changed = funnel_plan_save(tenant=request.tenant, data=data, actor=actor_for(request))
        return self._answer(request, plan)
