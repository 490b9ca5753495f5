"""The online learners: what learns each use case from Kafka, as Ray actors.

- ``actor``: ``OnlineLearner``, the actor (consume → predict → score → learn), and the helpers
  that start, find, stop and connect to it.
- ``checkpointer``: when a learner checkpoints, and the ordered steps of one checkpoint.
- ``metrics``: a learner's Prometheus series.
"""
