"""`lpn demo`: a device learns split digits one task after another, next to backprop.

The steps (`pipeline.run_demo`): split scikit-learn's digits into five two-class
tasks; make the fixed-point model of the shipped config; build its firmware with
PlatformIO; boot it in QEMU; stream the tasks over the serial line, pulling the
device's state after each task and comparing it byte for byte with the Python
fixed-point model fed the same stream; test on every task seen so far through the
device's own predictions; run scikit-learn's MLP on the same stream. `report`
turns the result into the JSON report and the tables, `figure` into the PNG.
"""
from __future__ import annotations

from .pipeline import DemoError, DemoSettings, run_demo

__all__ = ["DemoError", "DemoSettings", "run_demo"]
