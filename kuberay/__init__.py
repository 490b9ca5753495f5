"""rtml on Kubernetes through KubeRay: the RayService and RayJob manifests and a small client.

An adapter, like ``ray_apps/`` and ``jobs/``: it knows the core (``rtml``) and its one engine,
the Kubernetes API (the ``kubernetes`` package). ``manifests/`` holds the manifests with
``${placeholders}``; :mod:`kuberay.render` fills them (the Helm chart fills the same files, see
``charts/rtml``); :mod:`kuberay.client` applies, watches and deletes them.
"""
