"""Serializers of the scoring API: the backtest report (output only; the range comes in the query string)."""
from __future__ import annotations

from rest_framework import serializers


class BacktestModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class BacktestTopDecileSerializer(serializers.Serializer):
    count = serializers.FloatField(help_text="A tenth of the closed leads (ties at the edge count pro rata).")
    conversions = serializers.FloatField()
    conversion_rate = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(allow_null=True, help_text="Top-decile conversion rate / overall rate.")


class BacktestMqlSerializer(serializers.Serializer):
    band = serializers.CharField(help_text="Key of the auto-MQL band this line starts at.")
    threshold = serializers.IntegerField(help_text="Its min score: leads in it or a higher auto-MQL band are MQLs.")
    flagged = serializers.IntegerField(help_text="Closed leads the model would have made MQL.")
    flagged_won = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)


class BacktestBandSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    min_score = serializers.IntegerField(allow_null=True)
    max_score = serializers.IntegerField(allow_null=True)
    auto_mql = serializers.BooleanField()
    count = serializers.IntegerField()
    conversions = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)


class BacktestCalibrationSerializer(serializers.Serializer):
    min_score = serializers.IntegerField()
    max_score = serializers.IntegerField()
    count = serializers.IntegerField()
    conversions = serializers.IntegerField()
    mean_score = serializers.FloatField(allow_null=True)
    conversion_rate = serializers.FloatField(allow_null=True)


class BacktestSerializer(serializers.Serializer):
    model = BacktestModelSerializer()
    # `from` is a Python keyword: declared below.
    to = serializers.DateField(allow_null=True)
    count = serializers.IntegerField(help_text="Closed leads in the range (won, lost, disqualified).")
    conversions = serializers.IntegerField(help_text="Of them, won.")
    conversion_rate = serializers.FloatField(allow_null=True)
    auc = serializers.FloatField(allow_null=True, help_text="ROC AUC of the score for won vs not (ties count half); "
                                                            "null without both won and not-won leads.")
    top_decile = BacktestTopDecileSerializer()
    mql = BacktestMqlSerializer(allow_null=True, help_text="At the model's MQL threshold (its lowest auto-MQL band).")
    mql_thresholds = BacktestMqlSerializer(many=True, help_text="One line per auto-MQL band, from the lowest.")
    bands = BacktestBandSerializer(many=True)
    calibration = BacktestCalibrationSerializer(many=True, help_text="Per score decile: mean score and observed "
                                                                     "conversion rate.")
    message = serializers.CharField(help_text="Why metrics are null (no closed history, one class only); else empty.")


BacktestSerializer._declared_fields["from"] = serializers.DateField(allow_null=True)
