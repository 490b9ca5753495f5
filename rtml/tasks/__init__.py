"""Tasks: everything that differs between classification, regression and clustering.

A use-case spec names one (``task=Classification(beta=2.0, decision_threshold=0.15)``); the rest
of rtml asks the task, never which task it is. A new task is a new module here that implements
:class:`~rtml.tasks.base.Task` (docs/architecture.md says how).
"""

from rtml.tasks.base import LABEL, SEGMENT, Task
from rtml.tasks.classification import Classification
from rtml.tasks.clustering import Clustering
from rtml.tasks.regression import Regression

__all__ = ["LABEL", "SEGMENT", "Classification", "Clustering", "Regression", "Task"]
