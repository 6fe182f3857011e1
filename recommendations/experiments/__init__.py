"""A/B experiments between model versions: arms, stable assignment, exposures and their doors."""
