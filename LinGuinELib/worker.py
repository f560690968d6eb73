"""A study kept open in a child process: ``python -m LinGuinELib.worker``.

The Slicer module starts this worker as soon as the user has chosen the study's scans. It
reads the scans and registers their pairs in the background (``StudySession``), then tracks
whatever lesions it is sent: each new lesion costs only its local refinement and segmentation,
and a lesion sent again with the same prompt costs nothing. One process per open study; the
parent starts a new one when the scans change, sends other settings to the one it has (only what
they feed is redone), and kills it to cancel.

Commands, one JSON object per line on stdin, each with an ``id`` echoed in every answer:

    {"cmd": "open", "id": 1, "workdir": DIR, "warm_from": [scan id, ...]}
        DIR/study.json as for ``LinGuinELib.child`` (its lesions are ignored). Answers
        {"stage": "opened", "pairs": N} at once and {"stage": "warm", "register_calls": N}
        once the background registrations are done.
    {"cmd": "track", "id": 2, "lesions": [record, ...], "config": TrackingConfig.to_dict()}
        records as in study.json (mask files relative to DIR); "config" (optional) as for
        "configure", applied first, so a run never uses settings it was not sent with. Answers
        progress lines, then
        {"stage": "result", "path": "result-2.pickle", "register_calls": N, "reused": [lesion id, ...]}:
        the ``TrackingResult`` of exactly these lesions, written as ``child.write_result`` does.
    {"cmd": "configure", "id": 3, "config": TrackingConfig.to_dict()}
        other settings for the open study (secrets come from the environment, as at "open").
        Answers {"stage": "configured", "redone": S, "register_calls": N}: S is the first stage
        the change feeds (``config.STAGES``; null: no change). The scans stay loaded; the pairs
        stay registered unless S is "registration", and then a "warm" answer with this id
        follows once they are registered again; lesions are tracked again unless S is "output".
    {"cmd": "close", "id": 4}
        answers {"stage": "closed"} and exits 0; so does the end of stdin (the parent has gone).

Bad input answers {"stage": "error", "input": true, "message": ...} and the worker carries on;
any other failure answers {"stage": "error", "input": false, ...} and exits 1. An API key comes
only from LINGUINE_API_KEY in the environment, as for the one-shot child.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import IO, Any

from .child import (
    JsonProgress,
    load_child_study,
    protocol_stream,
    read_lesions,
    with_secret_from_environment,
    write_result,
)
from .logsetup import log_to_stderr

log = logging.getLogger(__name__)


class Worker:
    """Executes the protocol's commands; one session at a time."""

    def __init__(self, out: JsonProgress) -> None:
        self.out = out
        self.session: Any = None
        self.workdir: Path | None = None
        self.warming: Any = None  # the command whose warm-up is awaited

    def handle(self, command: dict) -> bool:
        """Run one command; False when the worker should stop."""
        kind, ident = command.get("cmd"), command.get("id")
        if kind == "close":
            self.close()
            self.out.emit({"id": ident, "stage": "closed"})
            return False
        from .errors import InputError

        if kind == "open" and command.get("workdir"):
            self.open(ident, Path(command["workdir"]), command.get("warm_from") or None)
        elif kind == "track" and isinstance(command.get("lesions"), list):
            self.track(ident, command["lesions"], command.get("config"))
        elif kind == "configure" and isinstance(command.get("config"), dict):
            self.configure(ident, command["config"])
        else:
            raise InputError(f"not a command: {json.dumps(command)[:200]}")
        return True

    def open(self, ident: Any, workdir: Path, warm_from: list[str] | None) -> None:
        from .session import StudySession

        self.close()
        study, config = load_child_study(workdir)
        study.lesions = []
        session = StudySession(study, config, warm_from=warm_from).start()
        self.session, self.workdir = session, workdir
        pairs = session.warm_pairs()
        self.out.emit({"id": ident, "stage": "opened", "pairs": len(pairs)})
        self._announce_warm(ident)

    def _announce_warm(self, ident: Any) -> None:
        """Answer "warm" with this id once the session's pairs are registered (in a thread)."""
        self.warming = ident
        threading.Thread(target=self._wait_warm, args=(ident, self.session), daemon=True).start()

    def _wait_warm(self, ident: Any, session: Any) -> None:
        try:
            session.wait_warm()
        except Exception as exc:  # a failed pair shows again, with its reason, when a lesion needs it
            log.warning("background registration failed: %s", exc)
            return
        if session is self.session and self.warming == ident:  # no other warm-up since
            self.out.emit({"id": ident, "stage": "warm", "register_calls": session.register_calls})

    def _reconfigure(self, values: Any) -> str | None:
        """The open session under the settings ``values`` (a config dict); the stage redone."""
        from .config import TrackingConfig
        from .errors import InputError

        if self.session is None:
            raise InputError("no study is open: send 'open' first")
        if not isinstance(values, dict):
            raise InputError("config must be a JSON object of tracking options")
        try:
            config = with_secret_from_environment(TrackingConfig(**values))
        except TypeError as exc:  # an unknown option name
            raise InputError(f"config: {exc}") from None
        return self.session.reconfigure(config)

    def configure(self, ident: Any, values: dict) -> None:
        redone = self._reconfigure(values)
        self.out.emit({"id": ident, "stage": "configured", "redone": redone,
                       "register_calls": self.session.register_calls})
        if redone == "registration":
            self._announce_warm(ident)

    def track(self, ident: Any, records: list[dict], config: dict | None = None) -> None:
        from .errors import InputError

        if self.session is None or self.workdir is None:
            raise InputError("no study is open: send 'open' first")
        lesions = read_lesions(records, self.workdir)
        if config is not None and self._reconfigure(config) == "registration":
            self._announce_warm(ident)
        self.out.extra = {"id": ident}
        try:
            result = self.session.track_lesions(lesions, progress=self.out)
        finally:
            self.out.extra = {}
        path = write_result(result, self.workdir, f"result-{ident}.pickle")
        self.out.emit({"id": ident, "stage": "result", "path": path.name,
                       "register_calls": self.session.register_calls, "reused": self.session.last_reused})

    def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close()


def serve(commands: IO[str], out: JsonProgress) -> int:
    """Answer commands until 'close' or the end of input; the exit status."""
    from .errors import InputError

    worker = Worker(out)
    try:
        for line in commands:
            if not line.strip():
                continue
            command: dict = {}
            try:
                command = json.loads(line)
                if not isinstance(command, dict):
                    raise InputError("a command is a JSON object")
                if not worker.handle(command):
                    return 0
            except (InputError, json.JSONDecodeError) as exc:  # bad input: say so, keep the study open
                out.emit({"id": command.get("id"), "stage": "error", "input": True, "message": str(exc)})
            except Exception as exc:
                log.exception("the study worker failed")
                out.emit({"id": command.get("id"), "stage": "error", "input": False,
                          "message": f"{type(exc).__name__}: {exc}"})
                return 1
        return 0
    finally:
        worker.close()


def main() -> int:
    log_to_stderr(logging.INFO)
    out = JsonProgress(protocol_stream())
    return serve(sys.stdin, out)


if __name__ == "__main__":
    sys.exit(main())
