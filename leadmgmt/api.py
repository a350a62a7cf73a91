"""Shared API plumbing: the `{"errors": {field: [messages]}}` exception handler and pagination."""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


def _as_lists(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, sub_msgs in _as_lists(value).items():
                    out[f"{key}.{sub_key}"] = sub_msgs
            elif isinstance(value, list):
                flat = []
                for item in value:
                    if isinstance(item, dict):
                        for sub_key, sub_msgs in _as_lists(item).items():
                            out[f"{key}.{sub_key}"] = sub_msgs
                    else:
                        flat.append(str(item))
                if flat:
                    out[key] = flat
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"detail": [str(item) for item in detail]}
    return {"detail": [str(detail)]}


def errors_response(errors: dict[str, list[str]], status_code: int, headers=None) -> Response:
    return Response({"errors": errors}, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        key_name = "detail"
        data = exc.detail
        if isinstance(data, dict) and "non_field_errors" in data:
            data = {**data}
            data[key_name] = data.pop("non_field_errors")
        response.data = {"errors": _as_lists(data)}
    else:
        response.data = {"errors": _as_lists(response.data.get("detail", response.data)
                                             if isinstance(response.data, dict) else response.data)}
    return response


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


__all__ = ["exception_handler", "errors_response", "Pagination", "status"]
