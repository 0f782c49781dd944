"""An in-memory engine: the test double of the planner and the engine of ``--dry-run``.

``FakeBackend`` honours the ``Backend`` protocol without touching anything
real. It keeps containers, networks, volumes and images in memory, follows
Docker's rules where a planner bug would show (duplicate names are
``Conflict``, unknown ids ``NotFound``, a running container cannot be
removed without ``force``, a network must exist before a container joins
it), and plays scripted behaviour on an injected ``Clock``:

* per service (``script``): healthy N seconds after start, unhealthy after
  T, exit with code C after T, slow to stop, failing create or start;
* per image (``script_image``): pull/build failures and durations; the
  "registry" id a pull returns (``publish``);
* any verb (``fail``): raise a given error when called for a given target.

Health and exits are computed from the clock when asked (``inspect_container``
and ``observe``), so a test advances a ``FakeClock`` (or lets the executor's
sleeps advance it) and sees the transitions at exact virtual times.
Durations (pulls, slow stops) are spent in ``clock.sleep`` outside the lock,
so concurrent steps overlap in virtual time as they would in real time.

Every call is recorded in ``calls`` as ``Call(verb, args, time)``; container
verbs record the container's *name* (not its id) so that assertions read
naturally. ``seed`` loads an ``ObservedState`` (from a real engine) so that a
dry run can execute a plan against a copy of the real state.

Containers print what ``Behaviour.output`` scripts (read back by ``logs``
and ``attach_run``); ``exec_run`` plays ``script_exec``; each container has
a small in-memory filesystem for ``cp``; verbs emit the container events
Docker emits. Not simulated: restart policies, hooks, real processes.

The engine is built in stages, one module each: ``state`` (records, lock,
shared rules), ``setup`` (scripts, seeding, call records), ``resources``
(observe, networks, volumes, images), ``containers`` (lifecycle),
``runtime`` (logs, exec, files, events, listings).
"""

from __future__ import annotations

from composer.backends.fake.records import Behaviour, Call, ExecScript, ImageBehaviour, fake_id
from composer.backends.fake.runtime import RuntimeVerbs

__all__ = ["Behaviour", "Call", "ExecScript", "FakeBackend", "ImageBehaviour", "fake_id"]


class FakeBackend(RuntimeVerbs):
    """The ``Backend`` protocol in memory; thread-safe. See the module notes."""
