"""The registry's REST API (``/api/v1/models/…``): views, their request shapes and permissions."""
