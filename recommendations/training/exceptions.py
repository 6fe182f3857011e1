class TrainingError(ValueError):
    """Input that training cannot use: a missing file or column, or nothing left to train on."""
