"""The per-project supervisor: the process that owns a project's containers.

One supervisor runs per project (``python -m composer.backends.native.supervisor
--root R --project P``). It is the containers' child subreaper, holds their
stdio and writes their logs, records exit codes, applies restart policies,
runs healthchecks and hooks, and hosts the project's DNS responders and port
proxies. The CLI talks to it through ``client.SupervisorClient`` over a unix
socket (``protocol.py``); ``records.py`` is the on-disk contract with the
backend.
"""
