"""What rtml keeps: the batch models' registry and its promotion gate (MLflow), behind small
functions; the learners' checkpoints live in :mod:`rtml.checkpoint`."""
