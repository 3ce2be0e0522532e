"""Feedback while ``fit`` runs: tqdm progress bars, a live loss/metric plot in notebooks, or one
log line per epoch elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from course_lib.train.history import History


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Display:
    def __init__(self, progress: bool, live_plot: bool | None, epochs: int) -> None:
        self.progress, self.epochs = progress, epochs
        self.live = _in_notebook() if live_plot is None else live_plot
        self.fig: Any = None
        self.handle: Any = None

    def batches(self, loader: Iterable[Any], epoch: int, total: int | None) -> Iterable[Any]:
        if not self.progress:
            return loader
        from tqdm.auto import tqdm

        return tqdm(loader, total=total, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False,
                    unit="batch")

    def epoch_end(self, history: History) -> None:
        if not self.live:
            if self.progress:
                print(history.line(self.epochs), flush=True)
            return
        from IPython.display import display

        self.fig = history.plot(None if self.fig is None else self.fig.axes)
        self.fig.suptitle(history.line(self.epochs), fontsize="small")
        self.fig.tight_layout()
        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)

    def close(self) -> None:
        if self.fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self.fig)  # the display already shows it; do not draw it twice

