"""The demo's figure: the device's accuracy matrix, and each task's accuracy as later
tasks are learnt, on the device and for the MLP fine-tuned with backprop."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _matrix(method: dict[str, Any]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in method["accuracy_matrix"]], dtype=float)


def write_figure(path: Path, report: dict[str, Any]) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    device = report["device"]
    R = _matrix(device)
    T = len(R)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1, 1.25]})

    image = left.imshow(np.ma.masked_invalid(100 * R), vmin=50, vmax=100, cmap="viridis")
    for i in range(T):
        for j in range(i + 1):
            left.text(j, i, f"{100 * R[i, j]:.1f}", ha="center", va="center",
                      color="black" if R[i, j] > 0.85 else "white", fontsize=8)
    left.set_xticks(range(T), [f"task {j}" for j in range(T)])
    left.set_yticks(range(T), [f"after {i}" for i in range(T)])
    left.set_title(f"{device['name']}: accuracy (%)\naverage {100 * device['average_accuracy']:.1f}%, "
                   f"forgetting {100 * device['forgetting']:+.1f} pts", fontsize=10)
    fig.colorbar(image, ax=left, fraction=0.046, pad=0.04)

    colours = plt.get_cmap("tab10")
    mlp = next((b for b in report["baselines"] if b["name"] == "MLP fine-tune"), None)
    steps = np.arange(T)
    for j in range(T):
        right.plot(steps[j:], 100 * R[j:, j], "-o", color=colours(j), markersize=4,
                   label=f"task {j}: LPN device")
        if mlp is not None:
            M = _matrix(mlp)
            right.plot(steps[j:], 100 * M[j:, j], "--x", color=colours(j), markersize=4, alpha=0.7,
                       label=f"task {j}: MLP fine-tune")
    right.set_xticks(steps, [f"after {i}" for i in steps])
    right.set_ylabel("test accuracy (%)")
    right.set_ylim(0, 102)
    right.grid(alpha=0.3)
    title = "each task's accuracy as later tasks are learnt"
    if mlp is not None:
        title += "\nsolid: LPN on the device; dashed: MLP fine-tuned by backprop"
    right.set_title(title, fontsize=10)
    right.legend(fontsize=7, ncol=2, loc="lower left")
    fw = report["firmware"]
    fig.suptitle(f"lpn demo: split digits, {T} tasks, learnt on {fw['board']} (QEMU); flash {fw['flash_bytes']} B, "
                 f"RAM {fw['ram_bytes']} B; bit-exact: {'yes' if report['bit_exact']['identical'] else 'NO'}",
                 fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
