"""Public pages of nurture email links (being built: unsubscribe, click-through, open pixel)."""
from django.http import Http404


def unsubscribe(request, token):
    raise Http404("Not available yet.")


def click(request, token):
    raise Http404("Not available yet.")


def open_pixel(request, token):
    raise Http404("Not available yet.")
