"""Errors raised by the recommendation engines."""


class EngineError(Exception):
    """Base class for every error the engines raise on purpose."""


class InvalidArrays(EngineError, ValueError):
    """The arrays given to an engine are missing or do not fit together."""


class UnknownItem(EngineError, KeyError):
    """An item id the engine's bundle does not contain."""

    def __init__(self, item_id):
        super().__init__(item_id)
        self.item_id = item_id

    def __str__(self):
        return f"unknown item id {self.item_id!r}"


class UnknownCustomer(EngineError, KeyError):
    """A customer id the engine's bundle does not contain."""

    def __init__(self, customer_id):
        super().__init__(customer_id)
        self.customer_id = customer_id

    def __str__(self):
        return f"unknown customer id {self.customer_id!r}"
