"""What the events door refuses as a whole (single events are refused one by one, not raised)."""


class FeedbackError(Exception):
    """A batch of events that cannot be taken at all."""

    code = "invalid"
    http_status = 400
    # Fields the answer carries besides detail and code.
    extra: dict = {}


class BatchTooLarge(FeedbackError):
    code = "too_many_events"
    http_status = 413


class BodyTooLarge(FeedbackError):
    code = "too_large"
    http_status = 413


class NothingAccepted(FeedbackError):
    """Every event of the batch was refused: the answer lists each one's reasons."""

    code = "no_event_accepted"

    def __init__(self, message, *, rejected):
        super().__init__(message)
        self.extra = {"accepted": 0, "rejected": rejected}
