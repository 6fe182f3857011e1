"""The experiments API (/api/v1/experiments/…): views, serializers, urls."""
