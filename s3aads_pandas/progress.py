"""Progress bars that leave nothing behind in a saved notebook.

In a terminal, tqdm's own bar. In a notebook kernel, tqdm's text bar drawn in one output that
each step replaces and that is emptied when the bar closes: no widget whose model is gone when
the notebook is reopened, no "0%| | 0/3012" left in the file, and it shows in every frontend
(JupyterLab, VS Code, nbconvert and nbval runs with nobody watching).
"""

from __future__ import annotations

import io
from typing import Any

from tqdm.auto import tqdm as terminal_tqdm
from tqdm.std import tqdm as text_tqdm


class NotebookText(text_tqdm):
    """tqdm's text bar in a notebook output of its own, emptied on close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from IPython.display import display

        self._handle = display(display_id=True)
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
