"""nbval plugin: wait for a cell's output as long as for the cell itself.

nbval waits a hard-coded 5 s for a cell's output messages once the kernel has replied; on a
loaded machine a chatty cell (progress output) misses that and nbval skips the rest of the
notebook ("Timeout of 5 seconds exceeded waiting for output"). Loaded by ``make notebooks``
with ``-p tests.nbval_patience``.
"""

from __future__ import annotations

OUTPUT_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = max(item.output_timeout, OUTPUT_TIMEOUT_S)
