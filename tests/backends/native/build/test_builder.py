"""The native builder: Dockerfile features built and checked by running the result."""

from __future__ import annotations

import os
import tarfile
import textwrap
from pathlib import Path

import pytest

from composer.backends.native.build.builder import Builder, BuildFailed
from composer.backends.native.build.dockerfile import DockerfileError
from composer.backends.native.build.run import RuntimeStepRunner
from composer.backends.native.images.store import ImageStore
from composer.backends.specs import BuildSpec
from tests.backends.native.build.conftest import run_image


def build(
    store: ImageStore, ctx: Path, dockerfile: str, log: list[str] | None = None, **spec: object
) -> str:
    (ctx / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    lines = log if log is not None else []
    builder = Builder(store, runner=RuntimeStepRunner(store.root.tmp), log=lines.append)
    return builder.build(BuildSpec(tag="app:test", context=str(ctx), **spec))  # type: ignore[arg-type]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    (d / "src").mkdir(parents=True)
    (d / "src" / "main.sh").write_text("echo main\n")
    (d / "src" / "lib.sh").write_text("echo lib\n")
    (d / "notes.txt").write_text("notes\n")
    return d


def test_instructions_table(store: ImageStore, ctx: Path) -> None:
    image_id = build(
        store,
        ctx,
        """\
        # syntax=docker/dockerfile:1
        ARG GREETING=hello
        FROM bb:latest AS base
        ARG GREETING
        ENV APP_HOME=/srv/app MODE="two words"
        WORKDIR $APP_HOME
        COPY src/ ./bin/
        COPY --chown=1000:1000 --chmod=0640 notes.txt /srv/notes.txt
        RUN echo "$GREETING from $(pwd)" > greeting && chmod 600 greeting
        RUN <<EOF
        echo first > heredoc.txt
        echo second >> heredoc.txt
        EOF
        COPY <<EOT /srv/app/inline.txt
        mode is $MODE
        EOT
        LABEL org.example.team=core
        EXPOSE 8080 53/udp
        VOLUME /data
        USER app
        STOPSIGNAL SIGINT
        HEALTHCHECK --interval=5s --retries=2 CMD test -f /srv/app/greeting
        ENTRYPOINT ["/bin/sh", "-c"]
        CMD ["cat greeting heredoc.txt inline.txt"]
        """,
    )
    cfg = store.image(image_id).config["config"]
    assert "APP_HOME=/srv/app" in cfg["Env"] and "MODE=two words" in cfg["Env"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["Labels"] == {"org.example.team": "core"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert (cfg["User"], cfg["StopSignal"]) == ("app", "SIGINT")
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -f /srv/app/greeting"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    ran = run_image(store, image_id, "/bin/sh", "-c", "cat greeting heredoc.txt inline.txt")
    assert ran.code == 1  # USER app cannot read the 0600 root file: USER is applied
    ran = run_image(store, image_id)
    assert "Permission denied" in ran.output
    as_app = run_image(
        store,
        image_id,
        "/bin/sh",
        "-c",
        "id -u; cat /srv/app/greeting /srv/app/heredoc.txt /srv/app/inline.txt; "
        "ls /srv/app/bin; stat -c '%u:%g %a' /srv/notes.txt",
    )
    # The run above is as the image's USER (app, uid 1000): it owns notes.txt via --chown.
    assert as_app.output.splitlines()[0] == "1000"
    assert "lib.sh" in as_app.output and "main.sh" in as_app.output
    assert "1000:1000 640" in as_app.output


def test_run_as_root_sees_every_step(store: ImageStore, ctx: Path) -> None:
    image_id = build(
        store,
        ctx,
        """\
        FROM bb:latest
        ARG WHO=world
        RUN echo "hello $WHO" > /greeting
        RUN rm /bin/vi && mkdir -p /opt/x && touch /opt/x/y
        CMD ["cat", "/greeting"]
        """,
        args={"WHO": "builder"},
    )
    assert run_image(store, image_id).output == "hello builder\n"
    gone = run_image(store, image_id, "/bin/sh", "-c", "test -e /bin/vi; echo $?; ls /opt/x")
    assert gone.output.split() == ["1", "y"]
    env = store.image(image_id).config["config"].get("Env") or []
    assert not any(e.startswith("WHO=") for e in env)  # ARGs are not persisted


def test_cache_hits_and_misses(store: ImageStore, ctx: Path) -> None:
    dockerfile = """\
        FROM bb:latest
        RUN echo one > /one
        COPY src /src
        RUN cat /src/main.sh > /copied
        """
    first_log: list[str] = []
    first = build(store, ctx, dockerfile, first_log)
    assert not any("CACHED" in line for line in first_log)
    again_log: list[str] = []
    assert build(store, ctx, dockerfile, again_log) == first
    assert sum("CACHED" in line for line in again_log) == 3
    os.utime(ctx / "src" / "main.sh", (1, 1))  # mtime only: still cached
    touched: list[str] = []
    assert build(store, ctx, dockerfile, touched) == first
    assert sum("CACHED" in line for line in touched) == 3
    (ctx / "src" / "main.sh").write_text("echo changed\n")
    changed: list[str] = []
    second = build(store, ctx, dockerfile, changed)
    assert second != first
    assert sum("CACHED" in line for line in changed) == 1  # only the RUN before the COPY
    assert run_image(store, second, "cat", "/copied").output == "echo changed\n"
    no_cache: list[str] = []
    build(store, ctx, dockerfile, no_cache, no_cache=True)
    assert not any("CACHED" in line for line in no_cache)


def test_multi_stage_copy_from_and_target(store: ImageStore, ctx: Path) -> None:
    dockerfile = """\
        FROM bb:latest AS build
        RUN mkdir /out && echo artefact > /out/a.txt
        FROM scratch AS tiny
        COPY --from=build /out/a.txt /a.txt
        FROM bb:latest AS final
        COPY --from=build /out/ /opt/
        COPY --from=0 /bin/busybox /opt/bb
        CMD ["cat", "/opt/a.txt"]
        """
    final = build(store, ctx, dockerfile)
    assert run_image(store, final).output == "artefact\n"
    tiny = build(store, ctx, dockerfile, target="tiny")
    image = store.image(tiny)
    assert len(image.layers) == 1
    assert (image.layer_dirs[0] / "a.txt").read_text() == "artefact\n"


def test_add_extracts_local_tar(store: ImageStore, ctx: Path) -> None:
    payload = ctx / "payload"
    payload.mkdir()
    (payload / "inside.txt").write_text("from the tar\n")
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as tar:
        tar.add(payload, arcname="pkg")
    image_id = build(store, ctx, "FROM bb:latest\nADD bundle.tar.gz /opt/\nADD notes.txt /n\n")
    out = run_image(store, image_id, "cat", "/opt/pkg/inside.txt", "/n").output
    assert out == "from the tar\nnotes\n"


def test_failing_run_names_the_line(store: ImageStore, ctx: Path) -> None:
    with pytest.raises(BuildFailed, match=r"Dockerfile:3: RUN exit 3 failed with exit code 3"):
        build(store, ctx, "FROM bb:latest\nRUN true\nRUN exit 3\n")


def test_malicious_contexts(store: ImageStore, ctx: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("secret")
    with pytest.raises(DockerfileError, match=r"Dockerfile:2:1: COPY: \.\./secret: outside"):
        build(store, ctx, "FROM bb:latest\nCOPY ../secret /s\n")
    os.symlink(str(tmp_path / "secret"), ctx / "src" / "leak")
    with pytest.raises(DockerfileError, match="Dockerfile:2:1: COPY: src/leak: symlink to"):
        build(store, ctx, "FROM bb:latest\nCOPY src /src\n")


def test_missing_base_image_is_a_clear_error(store: ImageStore, ctx: Path) -> None:
    from composer.errors import NotFound

    with pytest.raises(NotFound, match="not in the native image store"):
        build(store, ctx, "FROM nothing-here:1\n")


def test_a_native_build_runs_the_same_in_docker(
    store: ImageStore, ctx: Path, tmp_path: Path, unique_tag: str
) -> None:
    import subprocess

    from composer.backends.native.images.archive import save_to_file

    image_id = build(
        store,
        ctx,
        """\
        FROM bb:latest
        WORKDIR /work
        COPY src ./src
        RUN sh src/main.sh > out.txt && echo "built natively" >> out.txt && rm /bin/vi
        CMD ["sh", "-c", "cat /work/out.txt; ls /bin/vi 2>&1 | head -c 40"]
        """,
    )
    store.tag(unique_tag, image_id)
    native = run_image(store, image_id).output
    archive = tmp_path / "image.tar"
    save_to_file(store, [unique_tag], archive)
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True)
    try:
        docker = subprocess.run(
            ["docker", "run", "--rm", unique_tag], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", unique_tag], capture_output=True)
    assert docker == native
    assert native.startswith("main\nbuilt natively\n")


def test_onbuild_shell_labels_and_tags(store: ImageStore, ctx: Path, unique_tag: str) -> None:
    parent = build(
        store,
        ctx,
        """\
        FROM bb:latest
        SHELL ["/bin/sh", "-ec"]
        RUN test "$-" != "${-#*e}" && echo errexit-on > /shell
        ONBUILD RUN echo triggered > /trigger
        """,
    )
    store.tag("onbuild-parent:1", parent)
    assert run_image(store, parent, "cat", "/shell").output == "errexit-on\n"
    assert run_image(store, parent, "ls", "/trigger").code != 0
    child = build(
        store,
        ctx,
        'FROM onbuild-parent:1\nCMD ["cat", "/trigger"]\n',
        labels={"org.example.built-by": "composer"},
        tags=(unique_tag,),
    )
    assert run_image(store, child).output == "triggered\n"
    image = store.image(child)
    assert image.config["config"]["Labels"] == {"org.example.built-by": "composer"}
    assert "OnBuild" not in image.config["config"] or not image.config["config"]["OnBuild"]
    assert store.resolve(unique_tag) == child == store.resolve("app:test")


def test_add_from_a_url(store: ImageStore, ctx: Path) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"downloaded over http\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/files/payload.txt"
        image_id = build(store, ctx, f"FROM bb:latest\nADD {url} /opt/\n")
    finally:
        server.shutdown()
    ran = run_image(
        store, image_id, "sh", "-c", "cat /opt/payload.txt; stat -c %a /opt/payload.txt"
    )
    assert ran.output == "downloaded over http\n600\n"


def test_additional_contexts_inline_dockerfile_and_its_ignore_file(
    store: ImageStore, ctx: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "shared.txt").write_text("from another context\n")
    (ctx / "custom.Dockerfile").write_text("FROM bb:latest\nCOPY . /ctx/\n")
    (ctx / "custom.Dockerfile.dockerignore").write_text("src\n*.Dockerfile*\n")
    (ctx / ".dockerignore").write_text("notes.txt\n")  # loses to custom.Dockerfile.dockerignore
    image_id = Builder(store, runner=RuntimeStepRunner(store.root.tmp)).build(
        BuildSpec(tag="app:custom", context=str(ctx), dockerfile="custom.Dockerfile")
    )
    listing = run_image(store, image_id, "ls", "-a", "/ctx").output.split()
    # custom.Dockerfile.dockerignore wins: src and the Dockerfile are out, notes.txt is in.
    assert sorted(listing) == [".", "..", ".dockerignore", "notes.txt"]
    inline = Builder(store, runner=RuntimeStepRunner(store.root.tmp)).build(
        BuildSpec(
            tag="app:inline",
            context=str(ctx),
            dockerfile_inline=(
                'FROM base\nCOPY --from=shared shared.txt /s.txt\nCMD ["cat", "/s.txt"]\n'
            ),
            additional_contexts={"shared": str(extra), "base": "docker-image://bb:latest"},
        )
    )
    assert run_image(store, inline).output == "from another context\n"


def test_cache_keys_follow_content_not_stat(
    store: ImageStore, ctx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remembered digests save reads of unchanged files but never decide a hit by mtime."""
    from composer.backends.native.build import sums

    monkeypatch.setattr(sums, "RACY_NS", 0)  # trust a digest as soon as it was read
    reads: list[str] = []
    real = sums.file_digest

    def counting(path: Path | str) -> str:
        reads.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(sums, "file_digest", counting)
    dockerfile = """\
        FROM bb:latest
        COPY src /src
        RUN cat /src/main.sh > /copied
        """
    first = build(store, ctx, dockerfile)
    assert sorted(reads) == ["lib.sh", "main.sh"]
    reads.clear()
    again: list[str] = []
    assert build(store, ctx, dockerfile, again) == first
    assert reads == [] and sum("CACHED" in line for line in again) == 2
    main = ctx / "src" / "main.sh"
    old = os.stat(main)
    main.write_text("echo MAIN\n")  # same size
    os.utime(main, ns=(old.st_atime_ns, old.st_mtime_ns))  # same mtime
    assert (os.stat(main).st_size, os.stat(main).st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    changed: list[str] = []
    second = build(store, ctx, dockerfile, changed)
    assert reads == ["main.sh"]  # only the file whose ctime moved
    assert second != first and not any("CACHED" in line for line in changed)
    assert run_image(store, second, "cat", "/copied").output == "echo MAIN\n"


def test_cache_files_cut_short_are_misses(store: ImageStore, ctx: Path) -> None:
    """Cache files are not fsync'd: one left empty or torn by a crash only reruns its step."""
    dockerfile = """\
        FROM bb:latest
        COPY src /src
        RUN cat /src/main.sh > /copied
        """
    build(store, ctx, dockerfile)
    cache = store.root.images / "build-cache"
    entries = sorted(cache.glob("*.json"))
    assert entries
    for n, path in enumerate(entries):
        path.write_text(["", "{", "[1]", '{"blob": "sha256:zz", "diff_id": 1}'][n % 4])
    for path in (cache / "sums").glob("*.json"):
        path.write_text("{")
    log: list[str] = []
    image_id = build(store, ctx, dockerfile, log)
    assert not any("CACHED" in line for line in log)
    assert run_image(store, image_id, "cat", "/copied").output == "echo main\n"


def test_build_pull_asks_for_each_base_once_per_build(store: ImageStore, ctx: Path) -> None:
    bb = store.resolve("bb:latest")
    assert bb is not None
    calls: list[tuple[str, bool]] = []

    def puller(ref: str, *, fresh: bool = False) -> str:
        calls.append((ref, fresh))
        return bb

    (ctx / "Dockerfile").write_text(
        "FROM bb:latest AS one\nRUN echo one > /one\nFROM bb:latest\nCOPY --from=one /one /one\n"
    )
    builder = Builder(store, runner=RuntimeStepRunner(store.root.tmp), pull=puller)
    builder.build(BuildSpec(tag="app:test", context=str(ctx), pull=True))
    assert calls == [("bb:latest", True)]
    builder.build(BuildSpec(tag="app:test", context=str(ctx)))
    assert calls == [("bb:latest", True)]  # present, and no build.pull: the store's copy
    builder.build(BuildSpec(tag="app:test", context=str(ctx), pull=True))
    assert calls == [("bb:latest", True)] * 2  # a new build asks again


def test_a_cached_step_whose_layer_dir_is_gone_is_unpacked_from_its_blob(
    store: ImageStore, ctx: Path
) -> None:
    """A blob can outlive one chain of its layer (same diff on another parent): rebuild the dir."""
    import shutil

    dockerfile = """\
        FROM bb:latest
        COPY src /src
        RUN cat /src/main.sh > /copied
        """
    first = build(store, ctx, dockerfile)
    top = store.image(first).layers[-1]
    shutil.rmtree(top.path)
    assert store.has_blob(top.blob) and store.layer(top.chain_id) is None
    log: list[str] = []
    assert build(store, ctx, dockerfile, log) == first
    assert sum("CACHED" in line for line in log) == 2
    assert store.layer(top.chain_id) is not None
    assert run_image(store, first, "cat", "/copied").output == "echo main\n"
