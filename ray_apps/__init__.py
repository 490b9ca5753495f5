"""What runs on Ray: the online learners and the Serve application.

Importing this package changes nothing in the process. Ray reads its environment once, when it is
first imported (``rtml.ray_env``), so a process that joins Ray as a driver — the CLI, a job, a
test session, a benchmark — calls ``rtml.ray_env.apply_ray_env`` itself before anything imports
Ray; ``learner.connect`` refuses to join when Ray was imported unconfigured.
"""
