"""The run store: runs as stored, their events and their node results."""

from __future__ import annotations

from abc import abstractmethod

from .store import Store


class RunStore(Store):
    """Run history: what the run manager writes as runs go, and what clients read afterwards."""

    @abstractmethod
    def create_run(self, run: dict) -> None: ...

    @abstractmethod
    def update_run(self, run_id: str, **fields) -> None: ...

    @abstractmethod
    def get_run(self, run_id: str, with_nodes: bool = True) -> dict: ...

    @abstractmethod
    def list_runs(self, flow_id: str | None = None, status: str | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[list[dict], int]: ...

    @abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    def save_progress(self, run_id: str, events: list[dict], results: list[dict]) -> None:
        """Store a batch of events ({id, event, data, at, text?}) and node results ((position, result)
        pairs) in one transaction."""

    @abstractmethod
    def events(self, run_id: str, after: int = 0, limit: int = 1000, parse: bool = True) -> list[dict]:
        """Events after id `after`: {id, event, data, at}; without `parse`, {id, event, text, at} where
        text is the stored JSON (the event's data with its time), ready for an event stream."""

    @abstractmethod
    def unfinished_runs(self) -> list[dict]: ...

    @abstractmethod
    def prune_runs(self, flow_id: str | None, keep: int) -> int: ...
