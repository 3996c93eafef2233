"""A worker: APScheduler 3 runs the service's jobs; uvicorn serves its web app; signals stop it.

Each job is coalesced (runs missed while the worker was busy or asleep run once) and runs one
instance at a time. SIGTERM or SIGINT lets the running steps finish, gives back every lease
this worker holds (so others take over at once rather than when the leases expire), and
stops. Jobs are kept in memory: everything worth keeping is in the store, so a worker that
restarts simply starts its timers again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from assistant.config import Config
from assistant.errors import AssistantError
from assistant.service import Service
from assistant.store.database import STARTUP_PATIENCE_SECONDS, waiting_for_the_server
from assistant.web import create_app
from assistant.wiring import Built

log = logging.getLogger(__name__)
CHANNEL_RENEWAL_SECONDS = 3600


class _QuietWhenBusy(logging.Filter):
    """Drops APScheduler's warning that a job's next run was skipped while it still ran: jobs
    are coalesced on purpose, and a long delivery during a burst is no fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_QuietWhenBusy())


class Worker:
    def __init__(self, built: Built, config: Config, *, serve: bool = True) -> None:
        self.built, self.config = built, config
        self.service: Service = built.service
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                        "misfire_grace_time": 60})
        self._sync = _WakeableJob(self.scheduler, "sync", self._sync_and_deliver, self.stopping)
        self._outbox = _WakeableJob(self.scheduler, "outbox", self.service.deliver,
                                    self.stopping)
        # What a job queues goes out at once, from the outbox job, while that job goes on.
        self.service.effects_waiting = self._outbox.wake
        self.server: uvicorn.Server | None = None
        if serve:
            host, _, port = config.service.listen.rpartition(":")
            app = create_app(self.service, built.push_readers, wake_sync=self.wake_sync)
            self.server = uvicorn.Server(uvicorn.Config(app, host=host.strip("[]"),
                                                        port=int(port), log_level="warning"))

    def run(self, announce: Callable[[str], None] = log.info) -> None:
        """Until SIGTERM or SIGINT (or stop()): then finish, release leases and return.

        announce is told, once running, what the worker watches and where it listens.
        """
        # Every first step that reads the store waits for a database server still starting
        # (or restarting) rather than exit: the jobs after it have their own retries.
        watched = waiting_for_the_server(self._reconciled, STARTUP_PATIENCE_SECONDS)
        self.service.metrics.watch_store(self.service.store, self.service.clock)
        settings = self.config.service
        self._every("sync", self._sync, settings.sync_interval_seconds)
        self._every("outbox", self._outbox, settings.outbox_interval_seconds)
        self._every("inbox", self.service.read_replies, settings.inbox_interval_seconds)
        self._every("follow_up", self.service.follow_up, settings.follow_up_interval_seconds)
        self._every("channels", self.service.push.keep_open, CHANNEL_RENEWAL_SECONDS)
        web = None
        if self.server is not None:
            web = threading.Thread(target=self.server.run, name="web", daemon=True)
            web.start()
            self._wait_until_listening(web)  # Graph checks the webhook when a job subscribes
        previous = {}
        if threading.current_thread() is threading.main_thread():  # Python's rule for signals
            previous = {sig: signal.signal(sig, lambda *_: self.stop())
                        for sig in (signal.SIGTERM, signal.SIGINT)}
        self.scheduler.start()
        announce(self._started(watched))
        try:
            self.stopping.wait()
        finally:
            self.scheduler.shutdown(wait=True)  # lets the running steps finish
            if self.server is not None and web is not None:
                self.server.should_exit = True
                web.join(timeout=10)
            self.service.release_leases()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("worker %s stopped", self.service.worker)

    def _reconciled(self) -> dict[str, int]:
        """The watched calendars made what the config says, and counted for the announcement."""
        self.service.reconcile_calendars()
        return self.service.watched()

    def _started(self, counts: dict[str, int]) -> str:
        watched = ", ".join(f"{n} {provider}" for provider, n in counts.items()) or "nothing yet"
        web = (f"; web app on http://{self.config.service.listen} (/healthz, /metrics)"
               if self.server is not None else "")
        database = self.service.store.engine.url.render_as_string(hide_password=True)
        return (f"worker {self.service.worker} watching {watched} calendars, state in "
                f"{database}{web}; SIGTERM or Ctrl-C stops it")

    def stop(self) -> None:
        self.stopping.set()
        self.service.stop_soon()

    def wake_sync(self) -> None:
        """Sync now (a notification arrived), not at the next interval."""
        self._sync.wake()

    def _sync_and_deliver(self) -> None:
        self.service.sync()
        self.service.deliver()

    def _wait_until_listening(self, web: threading.Thread, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.server is not None and not self.server.started:
            if not web.is_alive() or time.monotonic() > deadline:
                raise AssistantError(
                    f"the web app could not listen on {self.config.service.listen} (is another "
                    "worker or program using that port?); set service.listen to a free one")
            time.sleep(0.02)

    def _every(self, name: str, job: Callable[[], object], seconds: int) -> None:
        def run_and_deliver() -> None:
            try:
                job()
                if name not in ("outbox", "sync"):  # those two deliver as they go
                    self.service.deliver()  # what a job decided goes out now, not in 5 s
            except Exception:  # a job that fails is logged and tried again next time
                log.exception("the %s job failed", name)
                self.service.metrics.error(name)

        self.scheduler.add_job(run_and_deliver, "interval", seconds=seconds, id=name,
                               next_run_time=datetime.now(UTC))


class _WakeableJob:
    """A scheduled job that can also be asked to run now.

    Asked while it runs, it goes round once more when it ends instead: APScheduler would
    refuse a second instance (and warn about it), and the work would wait for the next
    interval.
    """

    def __init__(self, scheduler: BackgroundScheduler, job_id: str, run: Callable[[], object],
                 stopping: threading.Event) -> None:
        self.scheduler, self.job_id, self.run, self.stopping = scheduler, job_id, run, stopping
        self._lock = threading.Lock()
        self._woken = False
        self._running = False

    def wake(self) -> None:
        with self._lock:
            self._woken = True
            if self._running:
                return
        if self.scheduler.running and self.scheduler.get_job(self.job_id) is not None:
            self.scheduler.modify_job(self.job_id, next_run_time=datetime.now(UTC))

    def __call__(self) -> None:
        with self._lock:
            self._running = True
        try:
            while True:
                with self._lock:
                    self._woken = False
                self.run()
                with self._lock:  # no wake slips in between looking and leaving
                    if not self._woken or self.stopping.is_set():
                        self._running = False
                        return
        except BaseException:  # a failed run (logged by the caller) must not leave wake()
            with self._lock:  # thinking it still runs
                self._running = False
            raise
