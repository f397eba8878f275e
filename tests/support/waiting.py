"""Waiting for a condition instead of sleeping a fixed time."""

import time


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, fail: str | None = None):
    """Poll `condition` until it returns something truthy or `timeout` passes; returns its last value.

    :param fail: when given, a condition still false at the timeout raises AssertionError with this text
        instead of returning the false value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            if fail is not None:
                raise AssertionError(f"{fail} (not within {timeout:g} s)")
            return value
        time.sleep(interval)
