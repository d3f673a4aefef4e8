"""The paper's seven experiments (lpn-spec section 15), each run on the float and the
fixed-point model, with synthetic data made from fixed seeds or scikit-learn's digits.

    from lpn.experiments import run
    result = run("replay", "fixed", quick=True)
    result.passed, result["forgetting_fraction"]
"""
from .models import KINDS
from .registry import EXPERIMENTS, Experiment, names, run
from .result import ExperimentResult, Metric

__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "KINDS", "Metric", "names", "run"]
