"""What ``composer --version`` and ``composer --help`` print, without importing typer.

Both must answer in well under 150 ms; importing typer alone takes a third of
that on a small machine, so these two texts are served from here. The help
below is what typer renders (at the fixed width the application sets), and
tests/test_cli.py fails when the two drift apart. To refresh it after changing
verbs or global flags, run:

    python -m composer.help_text > new.py && mv new.py composer/help_text.py
"""

from composer import __version__


def version_text(fmt: str = "pretty", short: bool = False) -> str:
    """What ``composer version`` prints (``--short``, ``--format json``)."""
    if fmt == "json":
        return f'{{"version":"{__version__}"}}\n'
    return f"{__version__}\n" if short else f"composer version {__version__}\n"


TOP_LEVEL_HELP = """\
Usage: composer [OPTIONS] COMMAND [ARGS]...

  composer runs multi-container applications described by Compose files.

  It reads compose.yaml (the Compose Specification) like Docker Compose does,
  and runs it on its own daemonless engine or on the Docker Engine.

Options:
  -f, --file FILE          Compose configuration files ('-' reads stdin).
  -p, --project-name NAME  Project name.
  --profile PROFILE        Specify a profile to enable.
  --env-file PATH          Specify an alternate environment file.
  --project-directory DIR  Specify an alternate working directory (default: the
                           first file's directory).
  --parallel N             Control max parallelism, -1 for unlimited
                           (COMPOSE_PARALLEL_LIMIT).
  --progress MODE          Progress output: auto, tty, plain, json, quiet
                           (COMPOSE_PROGRESS).
  --ansi WHEN              Control colours: never, always, auto (COMPOSE_ANSI).
  --dry-run                Show what would be done, change nothing.
  --debug                  Show tracebacks (also COMPOSER_DEBUG=1).
  --backend NAME           Engine: native or docker (COMPOSER_BACKEND).
  --version                Show the version and exit.
  -h, --help               Show this message and exit.

Commands:
  config   Parse, resolve and render the compose file in canonical format.
  up       Create and start containers.
  down     Stop and remove containers, networks.
  create   Creates containers for a service.
  start    Start services.
  stop     Stop services.
  restart  Restart service containers.
  rm       Removes stopped service containers.
  kill     Force stop service containers.
  pause    Pause services.
  unpause  Unpause services.
  ps       List containers.
  logs     View output from containers.
  run      Run a one-off command on a service.
  exec     Execute a command in a running container.
  cp       Copy files/folders between a service container and the local
           filesystem.
  port     Print the public port for a port binding.
  top      Display the running processes.
  images   List images used by the created containers.
  pull     Pull service images.
  push     Push service images.
  build    Build or rebuild services.
  events   Receive real time events from containers.
  wait     Block until containers of the given services stop.
  ls       List running compose projects.
  watch    Watch the build context and sync, rebuild or restart on change.
  ports    List the published ports of the project's services.
  version  Show the composer version.
  image    Manage images.
"""


def _regenerate() -> str:
    from pathlib import Path

    from composer.cli_commands import typer_help

    source = Path(__file__).read_text(encoding="utf-8")
    head, _, _ = source.partition('TOP_LEVEL_HELP = """\\\n')
    _, _, tail = source.partition('\n"""\n\n\ndef _regenerate')
    return head + 'TOP_LEVEL_HELP = """\\\n' + typer_help([]) + '"""\n\n\ndef _regenerate' + tail


if __name__ == "__main__":
    print(_regenerate(), end="")
