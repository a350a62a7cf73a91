"""Nurture API (being built): the bounce callback of the email provider."""
from rest_framework.views import APIView


class BounceCallbackView(APIView):
    authentication_classes = ()
    permission_classes = ()
