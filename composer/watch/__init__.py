"""``develop.watch``: file changes on the host carried into running services.

``filters`` decides which paths matter to which rule, ``watcher`` turns
file-system notifications into quiet-period batches, ``actions`` plans one
action per service for a batch and carries it out, ``transport`` moves files
into containers (Engine archive API, or straight into a native container's
root), ``session`` is the loop, ``detached`` the background watcher of
``up -d --watch``.
"""
