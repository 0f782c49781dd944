"""Starting a process as a container: namespaces, mounts, capabilities, seccomp, cgroups.

``spec.py`` holds the records (``LaunchSpec``, ``ExecSpec``); ``launch.py``
starts a container's PID 1 and ``exec.py`` enters a running one. The stages
of setup each have a module: ``mounts.py`` (rootfs and Docker's mounts),
``devices.py`` (``/dev``), ``masks.py`` (after ``pivot_root``), ``users.py``,
``caps.py``, ``seccomp.py``, ``process.py`` (the last steps before exec) and
``cgroups.py``; ``paths.py`` resolves paths inside a rootfs without leaving
it, ``syscalls.py`` wraps the system calls Python lacks, ``report.py``
carries a child's error to the parent.
"""
