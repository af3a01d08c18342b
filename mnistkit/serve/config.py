"""The grade-on-submit service's configuration: one JSON file, typed and checked when read.

Why a file of its own and not more fields of ``mnistkit.settings``: the service's rules are per
assignment (a rate limit, a deadline, which exercises students see) and change during a term,
while ``Settings`` holds what decides a score. The file follows the settings' conventions: it
lives in ``.mnistkit/`` beside ``course.json`` (``serve.json``), the exchange and course id
default to the course's own (``mnistkit course init``), and a value that does not parse is a
``SettingsError`` naming the key, so ``mnistkit serve`` stops with one line.

    {"poll_seconds": 3, "workers": 1, "instructor_groups": ["instructors"],
     "defaults": {"per_hour": 4, "show": "best"},
     "assignments": {"a1_pixel_similarity": {"per_hour": 2, "deadline": "2026-12-20T23:59:00+00:00",
                     "visibility": {"mnist_distance": "after_due_date"}}}}
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from mnistkit.settings import COURSE_FILE, SettingsError, load_settings

CONFIG_FILE = COURSE_FILE.parent / "serve.json"
STATE_DIR = COURSE_FILE.parent / "serve"           # serve.db and results/, in the course folder
LEVELS = ("hidden", "after_due_date", "after_published", "visible")   # Gradescope's visibility
SHOW = ("best", "last")


@dataclass(frozen=True)
class Rules:
    """One assignment's rules. ``per_hour``: gradings a student may start in any hour (a
    submission over it waits, recorded, and is graded once the hour allows); ``deadline``: epoch
    seconds after which submissions are not graded (None: open until an instructor closes it);
    ``show``: the best or the last grading; ``visibility``: exercise id -> level (``LEVELS``),
    others ``default_visibility``."""
    per_hour: int = 4
    deadline: float | None = None
    show: str = "best"
    visibility: Mapping[str, str] = field(default_factory=dict)
    default_visibility: str = "visible"

    def level(self, exercise: str) -> str:
        return self.visibility.get(exercise, self.default_visibility)


@dataclass(frozen=True)
class ServeConfig:
    exchange: Path
    course_id: str
    state_dir: Path
    poll_seconds: float = 3.0
    workers: int = 1
    instructors: tuple[str, ...] = ()
    instructor_groups: tuple[str, ...] = ("instructors",)
    check_owner: bool = False      # the inbound folder's Unix owner must be the student
    settle_seconds: float = 30.0   # a folder without timestamp.txt is taken after this long
    defaults: Rules = field(default_factory=Rules)
    assignments: Mapping[str, Rules] = field(default_factory=dict)

    @property
    def inbound(self) -> Path:
        return self.exchange / self.course_id / "inbound"

    @property
    def db(self) -> Path:
        return self.state_dir / "serve.db"

    @property
    def results(self) -> Path:
        return self.state_dir / "results"

    def rules(self, assignment: str) -> Rules:
        return self.assignments.get(assignment, self.defaults)


def _when(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        raise SettingsError(f"{where}={raw!r} is not an ISO date and time "
                            "(2026-12-20T23:59:00+00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _rules(raw: Any, where: str, base: Rules) -> Rules:
    if not isinstance(raw, dict):
        raise SettingsError(f"{where} is not a JSON object")
    known = {f.name for f in dataclasses.fields(Rules)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key not in known:
            raise SettingsError(f"{where} has no {key!r} (known: {', '.join(sorted(known))})")
        if key == "per_hour":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SettingsError(f"{at}={value!r} is not a whole number >= 0")
        elif key == "deadline":
            value = _when(value, at)
        elif key == "show" and value not in SHOW:
            raise SettingsError(f"{at}={value!r} is not one of {', '.join(SHOW)}")
        elif key == "default_visibility" and value not in LEVELS:
            raise SettingsError(f"{at}={value!r} is not one of {', '.join(LEVELS)}")
        elif key == "visibility":
            if not isinstance(value, dict) or any(v not in LEVELS for v in value.values()):
                raise SettingsError(f"{at} must map exercise ids to one of {', '.join(LEVELS)}")
            value = dict(value)
        values[key] = value
    return dataclasses.replace(base, **values)


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise SettingsError(f"{where} is not a list of names")
    return tuple(raw)


def from_dict(raw: Mapping[str, Any], course_root: Path, where: str = "serve.json") -> ServeConfig:
    """The configuration from a parsed file (``course_root``: the course folder, whose settings
    give the exchange and course id unless the file names them)."""
    course = load_settings(course_root)
    values: dict[str, Any] = dict(exchange=Path(course.exchange), course_id=course.course_id,
                                  state_dir=Path(course_root) / STATE_DIR)
    for key, value in raw.items():
        at = f"{where}: {key}"
        if key in ("exchange", "state_dir"):
            values[key] = Path(str(value))
        elif key == "course_id":
            values[key] = str(value)
        elif key in ("poll_seconds", "settle_seconds"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise SettingsError(f"{at}={value!r} is not a number of seconds > 0")
            values[key] = float(value)
        elif key == "workers":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(f"{at}={value!r} is not a whole number >= 1")
            values[key] = value
        elif key in ("instructors", "instructor_groups"):
            values[key] = _names(value, at)
        elif key == "check_owner":
            if not isinstance(value, bool):
                raise SettingsError(f"{at}={value!r} is not true or false")
            values[key] = value
        elif key in ("defaults", "assignments"):
            continue
        else:
            raise SettingsError(f"{where} has no {key!r}")
    defaults = _rules(raw.get("defaults", {}), f"{where}: defaults", Rules())
    assignments = raw.get("assignments", {})
    if not isinstance(assignments, dict):
        raise SettingsError(f"{where}: assignments is not a JSON object")
    values["defaults"] = defaults
    values["assignments"] = {name: _rules(rules, f"{where}: assignments.{name}", defaults)
                             for name, rules in assignments.items()}
    return ServeConfig(**values)


def load(path: Path | None, course_root: Path) -> ServeConfig:
    """``path`` (default: ``<course>/.mnistkit/serve.json``; a missing default file means the
    defaults)."""
    chosen = Path(path) if path is not None else Path(course_root) / CONFIG_FILE
    if not chosen.is_file():
        if path is not None:
            raise SettingsError(f"{chosen}: no such file")
        return from_dict({}, course_root)
    try:
        raw = json.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{chosen}: not readable JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{chosen}: not a JSON object")
    return from_dict(raw, course_root, str(chosen))
