"""The REST API (DRF): recommendations, similar items, batch, model versions, health."""
