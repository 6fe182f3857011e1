"""Offline training: read interactions, fit CF (implicit ALS) and CB (TF-IDF + SVD), write artifacts.

Nothing here is imported on the serving path: pandas, scipy, scikit-learn and implicit
belong to training and conversion only.
"""
