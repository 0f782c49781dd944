"""The Docker Engine backend (docker SDK); the only place ``docker.errors`` appears.

Importing this package does not import the docker SDK: that happens when a
``DockerBackend`` is constructed.
"""

from composer.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
