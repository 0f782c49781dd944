"""Docker backend: every SDK error is mapped; an unreachable daemon says so once, with a hint."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest
import requests
import urllib3

from composer.backends.docker import DockerBackend
from composer.backends.docker.errors import engine_errors, error_table, kind_of, translate
from composer.errors import BackendError, Conflict, NotFound, Unavailable, Unsupported


def sdk_error_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(docker.errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == docker.errors.__name__
    ]


def test_the_sdk_defines_error_classes() -> None:
    assert len(sdk_error_classes()) >= 15


@pytest.mark.parametrize("cls", sdk_error_classes(), ids=lambda c: c.__name__)
def test_every_docker_error_class_is_mapped_explicitly(cls: type[BaseException]) -> None:
    mapped = dict(error_table())
    assert cls in mapped, f"docker.errors.{cls.__name__} has no entry in error_table()"
    assert issubclass(mapped[cls], BackendError)


def http_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(message, response=response, explanation=message)


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (http_error(404, "No such container: x"), NotFound, "No such container"),
        (docker.errors.NotFound("gone"), NotFound, "gone"),
        (docker.errors.ImageNotFound("no image"), NotFound, "no image"),
        (http_error(409, "name in use"), Conflict, "name in use"),
        (http_error(403, "network has active endpoints"), Conflict, "active endpoints"),
        (http_error(501, "not implemented"), Unsupported, "not implemented"),
        (http_error(500, "driver failed"), BackendError, "driver failed"),
        (docker.errors.InvalidVersion("too old"), Unsupported, "too old"),
        (docker.errors.BuildError("bad", []), BackendError, "bad"),
        (docker.errors.StreamParseError(ValueError("x")), BackendError, "x"),
        (docker.errors.DockerException("odd"), BackendError, "odd"),
        (requests.exceptions.ConnectionError("refused"), Unavailable, "cannot reach"),
        (requests.exceptions.ReadTimeout("slow"), Unavailable, "do thing: timed out"),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ReadTimeoutError(None, "/wait", "Read timed out.")  # type: ignore[arg-type]
            ),
            Unavailable,
            "do thing: timed out",
        ),
        (urllib3.exceptions.ProtocolError("connection broken"), BackendError, "broken"),
        (requests.exceptions.ChunkedEncodingError("cut"), BackendError, "cut"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v)[:20],
)
def test_translate(exc: BaseException, kind: type[BackendError], text: str) -> None:
    err = translate(exc, "do thing")
    assert type(err) is kind
    assert text in err.message
    if kind is not Unavailable:
        assert err.message.startswith("do thing: ")


def test_engine_errors_lets_only_composer_errors_out() -> None:
    with pytest.raises(Conflict, match=r"^rename x: name in use$"), engine_errors("rename x"):
        raise http_error(409, "name in use")
    with pytest.raises(NotFound), engine_errors("inspect"):
        raise NotFound("already ours")


def test_kind_of_walks_the_mro_for_subclasses() -> None:
    class Custom(docker.errors.NotFound):
        pass

    assert kind_of(Custom) is NotFound
    assert kind_of(ValueError) is None


@pytest.mark.parametrize("host_kind", ["unix", "tcp"])
def test_unreachable_daemon_is_unavailable_with_a_hint(tmp_path: Path, host_kind: str) -> None:
    host = f"unix://{tmp_path}/missing.sock" if host_kind == "unix" else "tcp://127.0.0.1:1"
    backend = DockerBackend({"DOCKER_HOST": host, "HOME": str(tmp_path)})
    with pytest.raises(Unavailable) as info:
        backend.observe("p")
    err = info.value
    assert err.message == f"cannot reach the Docker daemon at {host} (from DOCKER_HOST)"
    assert err.hint is not None
    assert "dockerd" in err.hint and "DOCKER_HOST" in err.hint
    # Every verb fails the same way, not with a library error.
    with pytest.raises(Unavailable):
        backend.image_id("bb:latest")


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "import composer.backends.docker as d\n"
        "assert 'docker' not in sys.modules, 'imported at module import'\n"
        "d.DockerBackend({'DOCKER_HOST': 'unix:///nonexistent.sock'})\n"
        "assert 'docker' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
