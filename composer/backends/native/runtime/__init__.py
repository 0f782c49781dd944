"""Starting a process as a container: namespaces, mounts, capabilities, seccomp, cgroups.

``spec.py`` holds the records (``LaunchSpec``, ``ExecSpec``); ``launch.py``
starts a container's PID 1, ``exec.py`` enters a running one. The other
modules are the stages of setup, each usable on its own.
"""
