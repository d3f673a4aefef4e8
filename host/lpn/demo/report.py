"""The demo's report: the JSON document (schema in docs/demo.md) and the printed tables."""
from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table

from ..continual.protocol import MethodResult
from ..continual.tables import pct, pts

SCHEMA = "lpn-demo-report"
VERSION = 1
REPORT_FILE = "report.json"
FIGURE_FILE = "demo.png"
# What the demo is meant to show on task-incremental split digits, learnt on the device.
TARGET_AVERAGE_ACCURACY = 0.97
TARGET_FORGETTING = 0.01


def _lpn_version() -> str:
    try:
        return version("lpn-edge")
    except PackageNotFoundError:
        return "unknown"


def _clean(value: Any) -> Any:
    """Strict JSON: NaN becomes null, infinity a string, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def meets_targets(r: MethodResult) -> bool:
    return r.average_accuracy >= TARGET_AVERAGE_ACCURACY and r.forgetting <= TARGET_FORGETTING


def build_report(run: dict[str, Any]) -> dict[str, Any]:
    settings, stream, cfg = run["settings"], run["stream"], run["config"]
    device: MethodResult = run["device"]
    fw, size, info = run["firmware"], run["firmware"].size, run["info"]
    initial, pulled = run["initial"], run["pulled"]
    from .. import modelfile
    return _clean({
        "schema": SCHEMA,
        "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lpn_version": _lpn_version(),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "scenario": stream.scenario,
        "task_id_at_test": stream.task_id_at_test,
        "seed": settings.seed,
        "epochs": run["epochs"],
        "targets": run["targets"],
        "data": {"source": stream.source, "tasks": stream.summary(), "max_train": settings.max_train,
                 "max_test": settings.max_test, **stream.details},
        "config": {"name": cfg.name, "spec": settings.config,
                   "consolidation": {"enabled": cfg.consolidation.enabled,
                                     "on_task_switch": cfg.consolidation.on_task_switch},
                   "replay": {"enabled": cfg.replay.enabled, "capacity": cfg.replay.capacity,
                              "every": cfg.replay.every, "count": cfg.replay.count}},
        "model": {"initial_sha256": run["initial_hash"], "final_sha256": modelfile.model_hash(pulled),
                  "state_bytes": len(initial.state_bytes()), "synapses": initial.topology.synapses,
                  "formats": {"fa": initial.formats.fa, "fw": initial.formats.fw}},
        "firmware": {"env": fw.env, "machine": run["machine"], "board": info.board,
                     "firmware_version": info.firmware_version, "learner_sha256": fw.learner.model_hash,
                     "flash_bytes": size.flash, "ram_bytes": size.ram, "text_bytes": size.text,
                     "data_bytes": size.data, "bss_bytes": size.bss,
                     "stack_bytes": size.sections.get(".stack", 0), "free_ram_bytes": info.free_ram,
                     "build_seconds": round(fw.seconds, 3)},
        "device": device.to_dict(),
        "reference": run["reference"].to_dict(),
        "baselines": [b.to_dict() for b in run["baselines"]],
        "bit_exact": {"identical": bool(device.details.get("bit_exact")), "reference": "lpn.fixed.FixedLPN",
                      "checks": run["checks"]},
        # Not "targets": that key is the target coding, as in lpn continual's report.
        "goals": {"average_accuracy_min": TARGET_AVERAGE_ACCURACY, "forgetting_max": TARGET_FORGETTING,
                    "met": meets_targets(device)},
        "throughput": run["throughput"],
        "seconds": {k: round(v, 3) for k, v in run["seconds"].items()},
        "files": {**run["files"], "report": REPORT_FILE, "figure": FIGURE_FILE},
    })


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a report."""
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="summary: same stream, same order (avg: average accuracy %; forgetting: points)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("learner", "left"), ("avg", "right"), ("forgetting", "right"),
                          ("just-learnt", "right"), ("replay B", "right"), ("bit-exact", "left")):
        table.add_column(name, justify=justify, no_wrap=True, min_width=len(name))
    bit_exact = "yes" if report["bit_exact"]["identical"] else "NO"
    rows = [(report["device"], "QEMU", bit_exact), (report["reference"], "", "(ref.)")]
    rows += [(b, "", "") for b in report["baselines"]]
    for m, where, exact in rows:
        name = f"{m['name']} ({where})" if where else m["name"]
        table.add_row(name, pct(m["average_accuracy"]), pts(m["forgetting"]),
                      pct(m["just_learnt_accuracy"]), str(m["replay_bytes"]), exact)
    return table


def device_table(report: dict[str, Any]) -> Table:
    fw, tp, model = report["firmware"], report["throughput"], report["model"]
    table = Table(title="the device", title_justify="left", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    stack = f" (stack {fw['stack_bytes']} B of it)" if fw["stack_bytes"] else ""
    for k, v in (
        ("firmware", f"{fw['env']} ({fw['board']}, QEMU {fw['machine']})"),
        ("flash", f"{fw['flash_bytes']} B"),
        ("RAM (static)", f"{fw['ram_bytes']} B{stack}"),
        ("model state", f"{model['state_bytes']} B, {model['synapses']} synapses"),
        ("learning over serial", f"{tp['learn_samples_per_s']:.1f} samples/s ({tp['learn_line_bytes_per_s']:.0f} B/s)"),
        ("predicting over serial", f"{tp['predict_samples_per_s']:.1f} samples/s"),
        ("state pulls", f"{tp['state_pulls']} x {model['state_bytes']} B, "
                        f"{tp['state_pull_bytes_per_s']:.0f} B/s"),
        ("bit-exact after every task", "yes" if report["bit_exact"]["identical"] else "NO"),
    ):
        table.add_row(k, v)
    return table


def findings(report: dict[str, Any]) -> list[str]:
    d, t = report["device"], report["goals"]
    lines = [f"LPN on the device: average accuracy {pct(d['average_accuracy'])}%, forgetting "
             f"{pts(d['forgetting'])} points (target: at least {100 * t['average_accuracy_min']:.0f}%, at most "
             f"{100 * t['forgetting_max']:.0f} point): {'met' if t['met'] else 'NOT met'}"]
    for b in report["baselines"]:
        lines.append(f"{b['name']} (backprop, same data): average accuracy {pct(b['average_accuracy'])}%, "
                     f"forgetting {pts(b['forgetting'])} points")
    return lines
