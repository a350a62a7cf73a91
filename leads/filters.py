"""django-filter FilterSets of the leads API, and ordering that keeps empty values last."""
from __future__ import annotations

import re

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework.filters import OrderingFilter

from leadmgmt.api import aware_utc

from .models import Lead, LeadStage, LeadStatus


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time moved to UTC; an offset PostgreSQL refuses (past ±15:59) is a field error."""

    def to_python(self, value):
        return aware_utc(super().to_python(value))


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


OWNER_PATTERN = "^(me|none|[0-9]{1,18})$"  # a user id is a bigint


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (`40`, not `40.5`), as the schema documents for integer fields."""

    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "pattern": "^[^\\x00]*$"})
class TextFilter(django_filters.CharFilter):
    """Text as typed; a NUL character is a 400 (forms refuse it), which the schema says with its pattern."""


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 1})
class ProbabilityFilter(django_filters.NumberFilter):
    """A probability from 0 to 1."""

    field_class = forms.FloatField


class LeadFilterSet(django_filters.FilterSet):
    """`?status=new&status=contacted&score_min=40&q=acme&owner=me` — repeat a choice filter for OR."""

    status = django_filters.MultipleChoiceFilter(choices=LeadStatus.choices)
    stage = django_filters.MultipleChoiceFilter(choices=LeadStage.choices)
    owner = django_filters.CharFilter(
        method="filter_owner", label="Owner: a user id, `me`, or `none` for unassigned leads."
    )
    source = TextFilter(field_name="source", lookup_expr="iexact")
    band = TextFilter(field_name="band", lookup_expr="iexact")
    lead_class = TextFilter(field_name="lead_class", lookup_expr="iexact")
    account = django_filters.NumberFilter(field_name="account_id")
    score_min = IntegerFilter(field_name="score", lookup_expr="gte")
    score_max = IntegerFilter(field_name="score", lookup_expr="lte")
    # The learned model (scoring.predictive): leads without a probability yet never match these.
    predictive_score_min = IntegerFilter(field_name="predictive_score", lookup_expr="gte")
    predictive_score_max = IntegerFilter(field_name="predictive_score", lookup_expr="lte")
    conversion_probability_min = ProbabilityFilter(field_name="conversion_probability", lookup_expr="gte",
                                                   min_value=0, max_value=1)
    conversion_probability_max = ProbabilityFilter(field_name="conversion_probability", lookup_expr="lte",
                                                   min_value=0, max_value=1)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcIsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", label="Changed at or after (incremental sync)."
    )
    q = TextFilter(
        method="filter_q", label="Case-insensitive search in first and last name, email and company."
    )

    class Meta:
        model = Lead
        fields: list[str] = []

    @extend_schema_field({"type": "string", "pattern": OWNER_PATTERN,
                          "description": "Owner: a user id, `me`, or `none` for unassigned leads."})
    def filter_owner(self, queryset, name, value):
        if value == "none":
            return queryset.filter(owner__isnull=True)
        if value == "me":
            user = getattr(self.request, "user", None)
            return queryset.filter(owner_id=user.pk) if user is not None and user.pk else queryset.none()
        if not re.fullmatch(OWNER_PATTERN, value):
            raise ValidationError({"owner": ["Enter a user id, `me` or `none`."]})
        return queryset.filter(owner_id=int(value))

    def filter_q(self, queryset, name, value):
        condition = Q()
        for word in value.split()[:5]:
            condition &= (
                Q(first_name__icontains=word) | Q(last_name__icontains=word)
                | Q(email__icontains=word) | Q(company__icontains=word)
            )
        return queryset.filter(condition)


class NullsLastOrderingFilter(OrderingFilter):
    """`?ordering=-score`: leads not scored yet sort last either way; ties broken by id (stable pages)."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        terms = [
            F(term[1:]).desc(nulls_last=True) if term.startswith("-") else F(term).asc(nulls_last=True)
            for term in ordering
        ]
        return queryset.order_by(*terms, "id")
