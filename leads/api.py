"""Signals and leads API. Placeholder until the API work lands."""


def register(router) -> None:
    """Register this module's viewsets on the v1 router."""


extra_urlpatterns: list = []
