class TrainingError(ValueError):
    """Input that training cannot use: a missing file or column, or nothing left to train on."""


def one_line(exc: BaseException) -> str:
    """Return the first line of ``exc``'s message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
