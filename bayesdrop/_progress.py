"""Progress bars that suit where they are shown (private).

``progress=None`` shows a bar where someone watches: a terminal or a
notebook. ``progress=True`` forces it; where stderr is not a terminal (a log
file, CI) the bar then redraws at most every :data:`LOG_INTERVAL` seconds,
so a log gets a line now and then instead of thousands of redraws.
``progress=False`` hides it.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

#: Seconds between redraws of a forced bar when stderr is not a terminal.
LOG_INTERVAL = 30.0


def interactive() -> bool:
    """Whether stderr is a terminal or the code runs in a Jupyter kernel."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(iterable: Any = None, *, progress: bool | None, **kwargs: Any) -> Any:
    """A ``tqdm`` bar shown as :data:`progress` decides (see the module docstring)."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"The 'progress' parameter must be True, False or None. Got {progress!r} instead.")
    live = interactive()
    show = live if progress is None else progress
    if show and not live:
        kwargs.setdefault("mininterval", LOG_INTERVAL)
    return tqdm(iterable, disable=not show, **kwargs)
