"""The Serve application's parts: request parsing, the incremental and batch model holders, the
prediction cache, metrics, the HTTP routes, and the deploy step that `rtml up` runs.

They are plain classes, not deployments: one ingress replica holds them all, so a request crosses
no deployment-handle hop (see docs/serving.md).
"""
