"""A warm command server: the CLI's start-up paid once, not on every command.

Most of a short command's time is the interpreter importing typer, pydantic,
the loader, the planner and a backend (0.4-0.8 s), not the work itself. The
first command run in a given context starts, after it finishes, a background
server that has imported all of that; later commands from the same context
connect to its unix socket and hand over their argument list, environment,
umask and the descriptors of their standard streams and working directory.
The server forks; the child makes itself into the calling process (those
descriptors on 0, 1 and 2, that directory, that environment) and runs the
command exactly as ``composer.cli`` would, writing straight to the caller's
terminal or pipes. The client forwards the signals it receives (Ctrl-C) and
leaves with the child's exit code.

It is a cache, never a requirement: any doubt (no socket, a different
context, changed code) and the command runs
in its own process as before. ``COMPOSER_SERVER=0`` turns it off. A server
serves only callers identical to the process that started it (user, the
interpreter and its flags, namespaces, cgroup, capabilities, limits, locale;
``composer.cmdserver.identity``), re-checks the installed code before every
command, and exits after ``COMPOSER_SERVER_IDLE`` seconds (default 600)
without one. It runs no containers and holds no project state: the engine
stays daemonless.

Modules: ``identity`` (who may be served, where the socket lives),
``protocol`` (framing), ``client`` (the caller's side), ``server`` (accept
and fork), ``request`` (the forked child becoming the caller), ``warm``
(what the server imports ahead of time).
"""
