"""Progress bars that leave nothing behind in a saved notebook.

In a terminal, tqdm's own bar. In a notebook kernel, tqdm's text bar drawn in one output that
each step replaces and that is emptied when the bar closes: no widget whose model is gone when
the notebook is reopened, no "0%| | 0/3012" left in the file, and it shows in every frontend
(JupyterLab, VS Code, nbconvert and nbval runs with nobody watching).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm as terminal_tqdm
from tqdm.std import tqdm as text_tqdm

T = TypeVar("T")


class NotebookText(text_tqdm):
    """tqdm's text bar in a notebook output of its own, emptied on close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from IPython.display import DisplayHandle

        self._handle = DisplayHandle()  # an output appears with the first line (display() would add an empty one)
        self._shown = False
        kwargs.setdefault("file", io.StringIO())  # tqdm's own writes (a final "\r") go nowhere
        super().__init__(*args, **kwargs)

    def status_printer(self, file: Any) -> Any:  # tqdm calls it with the bar's line at each step
        def show(line: str) -> None:
            bundle = {"text/plain": line}
            if self._shown:
                self._handle.update(bundle, raw=True)
            elif line:
                self._handle.display(bundle, raw=True)
                self._shown = True
        return show


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(**options: Any) -> Any:
    """A tqdm bar: text in a notebook output of its own inside a kernel, tqdm.auto elsewhere."""
    if _in_kernel() and not options.get("disable"):
        return NotebookText(**options)
    return terminal_tqdm(**options)


#: A listing shows its bar once it has run this long (seconds): short ones show nothing.
LISTING_DELAY = 2.0


def counted(items: Iterable[T], progress: bool | None, desc: str) -> Iterator[T]:
    """``items`` as they come, counted by a bar of unknown total: shown at once with
    ``progress=True``, after :data:`LISTING_DELAY` seconds with None, never with False."""
    bar = progress_bar(desc=desc, unit="row", total=None, disable=progress is False, leave=False,
                       delay=0 if progress else LISTING_DELAY)
    try:
        for item in items:
            bar.update(1)
            yield item
    finally:
        bar.close()
