"""What serving needs of every engine, whatever its kind."""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Engine(Protocol):
    """A model ready to answer from its arrays, as serving loads, reports and warms it.

    ``CFEngine`` and ``CBEngine`` implement it; their scoring methods differ by kind
    (``recommend`` against ``similar_items``) and are called by the facade, which knows
    which kind it asked for.
    """

    @property
    def n_items(self) -> int:
        """Return the number of items the engine can answer with."""
        ...

    def describe_counts(self) -> dict[str, int]:
        """Return the sizes health reports: ``n_items`` and the kind's own dimensions."""
        ...

    def warm_up(self) -> None:
        """Answer one question so the first real request does not pay for the first page faults."""
        ...
