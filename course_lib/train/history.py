"""``History``: what ``fit`` measured, one record per epoch; print it as a table, plot its curves.

Notebook: 05_from_filters_to_cnns
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["History"]


class History:
    """What ``fit`` measured, one record (a dict) per epoch.

    Keys: ``epoch`` (1-based), ``train_loss``, ``val_loss`` and ``val_<metric>`` (with a
    validation loader), ``lr`` (at the epoch's end), ``seconds`` (wall time of the epoch,
    validation included), ``samples_per_s`` (training throughput).

    ``history["val_accuracy"]`` gives one column as a list; ``history.best`` the best record;
    ``print(history)`` a table; ``history.plot()`` the curves.

    Notebook: 05_from_filters_to_cnns
    """

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.records: list[dict[str, float]] = []
        self.stopped: str = ""  # why training ended early, if it did
        self.precision: str = ""
        self.device: str = ""

    def append(self, record: dict[str, float]) -> None:
        self.records.append({k: float(v) for k, v in record.items()})

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        if self.records and key not in self.records[0]:
            raise KeyError(f"no column {key!r}; the history has {list(self.records[0])}")
        return [r[key] for r in self.records]

    @property
    def columns(self) -> list[str]:
        return list(self.records[0]) if self.records else []

    @property
    def best(self) -> dict[str, float] | None:
        """The record with the best ``monitor`` value; None if empty.

        Ties (common for accuracy on small sets) go to the lower validation loss, then to the
        earlier epoch.
        """
        scored = [r for r in self.records if math.isfinite(r.get(self.monitor, math.nan))]
        if not scored:
            return self.records[-1] if self.records else None
        sign = 1.0 if self.mode == "max" else -1.0
        return max(scored, key=lambda r: (sign * r[self.monitor], -r.get("val_loss", 0.0),
                                          -r["epoch"]))

    def epochs_since_best(self) -> int:
        best = self.best
        return 0 if best is None else int(self.records[-1]["epoch"] - best["epoch"])

    def to_table(self, digits: int = 4) -> str:
        """A plain-text table, one row per epoch, the best row marked with ``*``."""
        if not self.records:
            return "History: no epochs yet"
        cols = self.columns
        best = self.best
        rows = [[("*" if r is best else "") + f"{int(r['epoch'])}"]
                + [_fmt(r[c], c, digits) for c in cols[1:]] for r in self.records]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_table()

    def line(self, epochs: int | None = None) -> str:
        """The last epoch as one log line."""
        r = self.records[-1]
        total = f"/{epochs}" if epochs else ""
        parts = [f"epoch {int(r['epoch'])}{total}"]
        parts += [f"{k} {_fmt(v, k, 4)}" for k, v in r.items() if k != "epoch"]
        return " | ".join(parts)

    def plot(self, axes: Sequence[Any] | None = None) -> Any:
        """Loss curves (left) and the monitored metric (right) against epoch; returns the figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        fig = axes[0].figure
        for ax in axes:
            ax.clear()
        epochs = self["epoch"] if self.records else []
        for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
            if self.records and key in self.records[0]:
                axes[0].plot(epochs, self[key], style, label=key.replace("_", " "), ms=3)
        axes[0].set(xlabel="epoch", ylabel="loss (per sample)", title="loss")
        metric_cols = [c for c in self.columns if c.startswith("val_") and c != "val_loss"]
        for key in metric_cols:
            axes[1].plot(epochs, self[key], "-o", label=key.replace("_", " "), ms=3)
        axes[1].set(xlabel="epoch", ylabel="score (fraction, 1 = perfect)",
                    title="validation metrics")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize="small")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def state_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint loads with ``weights_only=True``."""
        return {"monitor": self.monitor, "mode": self.mode, "records": self.records,
                "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitor, self.mode = state["monitor"], state["mode"]
        self.records = [dict(r) for r in state["records"]]
        self.stopped = state["stopped"]


def _fmt(value: float, key: str, digits: int) -> str:
    if key == "lr":
        return f"{value:.2e}"
    if key in ("seconds", "samples_per_s"):
        return f"{value:.1f}"
    return f"{value:.{digits}f}"

