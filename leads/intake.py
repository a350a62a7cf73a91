"""The public intake endpoint (POST /api/v1/intake/). Placeholder until the intake work lands."""
from rest_framework.views import APIView


class IntakeView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
