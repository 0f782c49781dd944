"""The native backend: containers run by composer itself, without a daemon.

Linux namespaces, cgroups and overlayfs are driven directly; state lives
under one root directory (``COMPOSER_ROOT``, default ``/var/lib/composer``)
that is the source of truth for ``observe``. Sub-packages: ``images``
(store, extractor, registry client, archives), ``runtime`` (launching a
process inside new namespaces), ``network`` (bridges, DNS, published
ports), ``supervisor`` (the per-project process that owns containers) and
``build`` (Dockerfile builds).
"""
