"""What the events door refuses as a whole (single events are refused one by one, not raised)."""


class FeedbackError(Exception):
    """A batch of events that cannot be taken at all."""

    code = "invalid"
    http_status = 400


class BatchTooLarge(FeedbackError):
    code = "too_many_events"
    http_status = 413


class BodyTooLarge(FeedbackError):
    code = "too_large"
    http_status = 413
