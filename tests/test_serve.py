"""Grade on submit (`mnistkit serve`, mnistkit/serve/): submissions in the exchange's inbound
folder are graded by the same engine as `mnistkit grade`, rate-limited per student, paused and
closed by instructors, kept in SQLite across restarts, and shown to each student (their own
only, escaped, with the instructor's visibility) behind the hub's OAuth.

The rules (rate limit, pause, deadline) and the web app are tested without grading (a stand-in
for the hub's OAuth, tornado's testing tools); grading uses the toy course."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from tornado.testing import AsyncHTTPTestCase

from mnistkit.grading import run
from mnistkit.serve import app as serve_app
from mnistkit.serve import config as serve_config
from mnistkit.serve import feedback, queue
from mnistkit.serve.service import Service
from mnistkit.serve.store import Store

from .corpus import toy_cases as corpus
from .fixtures.toy_course import toy_helpers as toy
from .test_grade_corpus import limits_env

COURSE_ID = "toy-course"
T0 = 1_800_000_000.0   # a fixed clock for the rules' tests


# --- helpers -----------------------------------------------------------------------------

class StandInAuth:
    """The hub's OAuth stand-in (tests only): the user named by the X-Stand-In-User header,
    in the groups of X-Stand-In-Groups. Like a hub token, it is not a cookie: no xsrf."""
    access_scopes: set = set()
    login_url = ""          # no hub to log in at: anonymous requests get 403
    base_url = "/"

    def get_user(self, handler):
        name = handler.request.headers.get("X-Stand-In-User")
        if not name:
            return None
        groups = [g for g in handler.request.headers.get("X-Stand-In-Groups", "").split(",") if g]
        return {"name": name, "kind": "user", "admin": False, "groups": groups, "scopes": []}

    def _persist_url_token_if_set(self, handler):
        pass

    def check_xsrf_cookie(self, handler):
        pass


def make_config(tmp: Path, course: Path, **raw) -> serve_config.ServeConfig:
    raw = {"exchange": str(tmp / "exchange"), "course_id": COURSE_ID,
           "state_dir": str(tmp / "state"), "poll_seconds": 0.2, "settle_seconds": 1, **raw}
    return serve_config.from_dict(raw, course)


def submit(config, student: str, nb=None, *, assignment: str = toy.ASSIGNMENT,
           stamp: str | None = None) -> str:
    """What `nbgrader submit` writes: the folder, then timestamp.txt. Returns the key."""
    stamp = stamp or time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime())
    key = f"{student}+{assignment}+{stamp}+{os.urandom(4).hex()}"
    folder = config.inbound / key
    folder.mkdir(parents=True)
    if nb is not None:
        toy.submit(folder, nb)
    (folder / "timestamp.txt").write_text(stamp)
    return key


def add(store, key, student, arrived, assignment=toy.ASSIGNMENT):
    store.add(key, student, assignment, f"/nowhere/{key}", arrived, now=arrived)
    return key


# --- the rules, without grading ------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("serve_course"))



@pytest.fixture
def rules(tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    config = make_config(tmp_path, course, assignments={toy.ASSIGNMENT: {"per_hour": 2}})
    return config, Store(config.db)


def test_the_rate_limit_makes_a_third_submission_in_an_hour_wait(rules):
    """With 2 gradings per hour, is alice's third submission recorded but graded only once her
    first grading is an hour old, while bob's, later, goes first? Is she told when?"""
    config, store = rules
    for i in range(3):
        add(store, f"alice+{toy.ASSIGNMENT}+{i}", "alice", T0 + i)
    add(store, f"bob+{toy.ASSIGNMENT}+0", "bob", T0 + 10)
    first = queue.pick(store, config, T0 + 20, slots=10)
    assert [r.key for r in first] == [f"alice+{toy.ASSIGNMENT}+0", f"alice+{toy.ASSIGNMENT}+1",
                                      f"bob+{toy.ASSIGNMENT}+0"]
    for row in first:
        store.start(row.key, T0 + 20)
    third = f"alice+{toy.ASSIGNMENT}+2"
    assert store.get(third).state == "waiting"
    assert queue.pick(store, config, T0 + 30, slots=10) == []
    assert queue.next_allowed(store, config, "alice", toy.ASSIGNMENT, T0 + 30) == 3590
    assert queue.next_allowed(store, config, "bob", toy.ASSIGNMENT, T0 + 30) == 0
    where = queue.place(store, config, third, T0 + 30)
    assert where["position"] is None and "over the limit of 2" in where["why"] \
        and "60 min" in where["why"]
    later = queue.pick(store, config, T0 + 20 + queue.HOUR, slots=10)
    assert [r.key for r in later] == [third]


def test_pause_holds_the_queue_and_resume_releases_it(rules):
    """While paused, does nothing start, is each student told why, and is nothing lost?"""
    config, store = rules
    key = add(store, f"carol+{toy.ASSIGNMENT}+0", "carol", T0)
    store.set_control("paused", str(T0), "teacher", "pause")
    assert queue.pick(store, config, T0 + 1, slots=4) == []
    assert "paused" in queue.place(store, config, key, T0 + 1)["why"]
    store.set_control("paused", None, "teacher", "resume")
    assert [r.key for r in queue.pick(store, config, T0 + 2, slots=4)] == [key]
    assert [e["what"] for e in store.events()] == ["resume", "pause"]


def test_the_deadline_and_closing_stop_later_submissions(course, tmp_path):
    """Is a submission that arrives after the configured deadline, or after an instructor
    closed the assignment, marked late and never picked, while one that arrived in time is
    still graded after the deadline?"""
    deadline = time.time() + 3600
    config = make_config(tmp_path, course, assignments={toy.ASSIGNMENT: {
        "deadline": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(deadline))}})
    service = Service(config, run.Course.at(course))
    in_time = submit(config, "dan")
    service.poll()
    assert service.store.get(in_time).state == "waiting"
    service.store.set_control(f"closed:{toy.ASSIGNMENT}", str(time.time()), "teacher", "close")
    time.sleep(1.1)
    late = submit(config, "erin")
    service.poll()
    assert service.store.get(late).state == "late"
    assert "after the assignment closed" in service.store.get(late).reason
    assert [r.key for r in queue.pick(service.store, config, time.time(), 4)] == [in_time]
    other = submit(config, "erin", assignment="no_such_assignment")
    service.poll()
    assert service.store.get(other).state == "unknown"


def test_with_check_owner_a_folder_is_taken_only_from_the_student_it_names(tmp_path):
    """Where every student has a Unix account (``check_owner``), is a submission folder that
    names another student ignored (an impersonation), and one owned by the named account
    taken? Without it, both are taken (the documented limit of a shared-uid hub)."""
    import pwd

    from mnistkit.serve import watcher
    me = pwd.getpwuid(os.getuid()).pw_name
    stamp = "2026-12-06 07:00:00.000000 UTC"
    for student in (me, "someone-else"):
        folder = tmp_path / f"{student}+{toy.ASSIGNMENT}+{stamp}"
        folder.mkdir()
        (folder / "timestamp.txt").write_text(stamp)
    later = time.time() + 60
    taken = {found.student for found in watcher.scan(tmp_path, set(), later, check_owner=True)}
    assert taken == {me}
    assert {found.student for found in watcher.scan(tmp_path, set(), later)} == {me, "someone-else"}


def test_the_configuration_refuses_what_it_cannot_read(tmp_path):
    """Does a bad value stop the service with one line naming the key?"""
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    for raw, words in [({"defaults": {"per_hour": -1}}, "defaults.per_hour"),
                       ({"assignments": {"a": {"show": "worst"}}}, "assignments.a.show"),
                       ({"assignments": {"a": {"visibility": {"x": "sometimes"}}}}, "visibility"),
                       ({"assignments": {"a": {"deadline": "friday"}}}, "not an ISO date"),
                       ({"workers": 0}, "workers"), ({"frobnicate": 1}, "frobnicate")]:
        with pytest.raises(serve_config.SettingsError, match=words):
            serve_config.from_dict(raw, course)


# --- the web app, with a stand-in for the hub's OAuth --------------------------------------

HOSTILE_REASON = "<script>alert('x')</script> not what was expected"


def graded_results(hidden_score: float) -> dict:
    return {"score": 2 + hidden_score, "output": "toy", "tests": [
        {"name": "double_it: doubles ints", "score": 0.0, "max_score": 2.0, "status": "failed",
         "output": HOSTILE_REASON, "visibility": "visible"},
        {"name": "mean_image: the answer", "score": hidden_score, "max_score": 3.0,
         "status": "passed" if hidden_score else "failed", "output": "", "visibility": "visible"}]}


class WebAppTest(AsyncHTTPTestCase):
    """The tornado app through HTTP (tornado.testing), on a store with two students' results;
    mean_image is shown only after the deadline."""

    def get_app(self):
        import tempfile
        self.tmp = Path(tempfile.mkdtemp(prefix="serve-web-"))
        (self.tmp / "course" / "source").mkdir(parents=True)
        self.config = make_config(self.tmp, self.tmp / "course", instructor_groups=["teachers"],
                                  assignments={toy.ASSIGNMENT: {
                                      "show": "best", "visibility": {"mean_image": "after_due_date"}}})
        self.store = Store(self.config.db)
        now = time.time()
        for student, score in (("alice", 3.0), ("alice", 0.0), ("<b>mallory</b>", 1.0)):
            key = add(self.store, f"{student}+{toy.ASSIGNMENT}+{score}", student, now - 100)
            self.store.start(key, now - 90)
            self.store.finish(key, graded_results(score), 2 + score, 5.0, now - 80)
        add(self.store, f"alice+{toy.ASSIGNMENT}+waiting", "alice", now - 50)
        return serve_app.make_app(self.store, self.config, StandInAuth(), "/services/grade/")

    def as_user(self, path, user, groups="", **kw):
        headers = {"X-Stand-In-User": user, "X-Stand-In-Groups": groups}
        return self.fetch("/services/grade/" + path, headers=headers, **kw)

    def test_a_student_sees_only_their_own_visible_feedback_escaped(self):
        """Does alice's JSON and page show her place, her next grading and double_it's score and
        reason, escaped in HTML, and neither the hidden exercise nor mallory?"""
        me = json.loads(self.as_user("api/me", "alice").body)
        item = me["assignments"][toy.ASSIGNMENT]
        assert item["next_grading_in_seconds"] == 0
        assert [e["exercise"] for e in item["result"]["exercises"]] == ["double_it"]
        assert item["result"]["exercises"][0]["reasons"] == [HOSTILE_REASON]
        assert item["result"]["max_score"] == 2.0
        assert [s["state"] for s in item["submissions"]] == ["graded", "graded", "waiting"]
        assert item["submissions"][2]["position"] == 1
        page = self.as_user("", "alice").body.decode()
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
        assert "<script>" not in page and "mallory" not in page and "mean_image" not in page
        theirs = self.as_user("", "<b>mallory</b>").body.decode()
        assert "&lt;b&gt;mallory&lt;/b&gt;" in theirs and "<b>mallory" not in theirs

    def test_after_the_deadline_the_best_grading_shows_every_exercise(self):
        """Once the assignment is closed, is mean_image shown, from the best grading?"""
        self.store.set_control(f"closed:{toy.ASSIGNMENT}", str(time.time() - 1), "t", "close")
        result = json.loads(self.as_user("api/me", "alice").body)["assignments"][
            toy.ASSIGNMENT]["result"]
        assert {e["exercise"]: e["score"] for e in result["exercises"]} == \
            {"double_it": 0.0, "mean_image": 3.0}

    def test_only_instructors_see_the_queue_and_pause_it(self):
        """Are the queue and the controls refused to a student (403) and to nobody (403), and do
        they work for a member of the instructors' group, every request logged?"""
        assert self.as_user("api/queue", "alice").code == 403
        assert self.as_user("api/pause", "alice", method="POST", body="").code == 403
        assert self.fetch("/services/grade/api/me").code == 403
        assert self.as_user("queue", "teacher", "teachers").code == 200
        done = self.as_user("api/pause", "teacher", "teachers", method="POST", body="")
        assert done.code == 200 and json.loads(done.body)["paused"] is True
        assert self.store.paused()
        body = urlencode({"assignment": toy.ASSIGNMENT})
        assert self.as_user("api/close", "teacher", "teachers", method="POST", body=body).code == 200
        assert self.store.closed_at(toy.ASSIGNMENT) is not None
        self.as_user("api/resume", "teacher", "teachers", method="POST", body="")
        assert not self.store.paused()
        assert self.store.request_count() == 7


# --- grading through the service (the toy course) --------------------------------------------

@pytest.fixture
def grading_env(course, monkeypatch):
    """The toy course's limits for the service's workers (spawned: they read os.environ)."""
    env = limits_env(**{run.COURSE_ENV: str(course)})
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"   # tests only: student code in the grader
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def drain(service: Service, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    service.step()
    while service.running or not service.idle():
        assert time.monotonic() < deadline, "the service did not finish grading"
        service.step(wait=1.0)


@pytest.mark.slow
def test_graded_on_submit_with_the_scores_mnistkit_grade_gives(course, grading_env, tmp_path):
    """Does the service grade each submission once, with the very scores `mnistkit grade` gives
    the same folder (results.json compared), and show them to the student?"""
    config = make_config(tmp_path, course, workers=2)
    service = Service(config, run.Course.at(course))
    keys = {"full": submit(config, "fiona", toy.source_notebook(course)),
            "half": submit(config, "hugo", toy.with_answers(toy.release_notebook(course),
                                                            **toy.HALF_RIGHT))}
    try:
        drain(service)
    finally:
        service.stop()
    for kind, key in keys.items():
        row = service.store.get(key)
        assert row.state == "graded" and row.gradings == 1, (row.state, row.reason)
        out = tmp_path / f"{kind}.json"
        proc = subprocess.run([sys.executable, "-m", "mnistkit", "grade", str(config.inbound / key),
                               "--assignment", toy.ASSIGNMENT, "--results", str(out)],
                              env=grading_env, cwd=course, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        alone = json.loads(out.read_text())
        served = row.gradescope()
        assert served["score"] == alone["score"]
        assert [(t["name"], t["score"]) for t in served["tests"]] == \
            [(t["name"], t["score"]) for t in alone["tests"]]
    assert service.store.get(keys["full"]).score == 5.0
    view = feedback.student_view(service.store, config, "hugo")
    shown = {e["exercise"]: e["score"] for e in view["assignments"][toy.ASSIGNMENT]["result"][
        "exercises"]}
    assert shown == toy.HALF_RIGHT_SCORES
    assert toy.HIDDEN_MARKER not in json.dumps(view)


def _db_states(db: Path) -> dict:
    """(state, gradings, finished) by key, read as another process would ({} before the
    service made its tables)."""
    try:
        conn = sqlite3.connect(str(db), timeout=30)
        try:
            return {key: (state, gradings, finished) for key, state, gradings, finished in
                    conn.execute("SELECT key, state, gradings, finished FROM submissions")}
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return {}


def _serve(course, config_file, env, log):
    hub_env = dict(env, JUPYTERHUB_API_TOKEN="stand-in", JUPYTERHUB_CLIENT_ID="service-grade",
                   JUPYTERHUB_SERVICE_PREFIX="/services/grade/",
                   JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api")
    from tornado.testing import bind_unused_port
    sock, port = bind_unused_port()
    sock.close()
    return subprocess.Popen([sys.executable, "-m", "mnistkit", "serve", "--config",
                             str(config_file), "--port", str(port)], cwd=course, env=hub_env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait_for(condition, timeout=300, every=0.3):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


@pytest.mark.slow
def test_a_killed_service_loses_nothing_and_grades_nobody_twice(course, grading_env, tmp_path):
    """`mnistkit serve` killed (SIGKILL) while grading, then started again: is every submission
    graded, the one under way graded again (it was never recorded), and none graded before the
    kill graded a second time?"""
    raw = {"exchange": str(tmp_path / "exchange"), "course_id": COURSE_ID,
           "state_dir": str(tmp_path / "state"), "poll_seconds": 0.3, "workers": 1,
           "settle_seconds": 1}
    config_file = tmp_path / "serve.json"
    config_file.write_text(json.dumps(raw))
    config = serve_config.from_dict(raw, course)
    slow = toy.with_answers(toy.source_notebook(course), double_it=(
        "import time\ntime.sleep(8)\n" + corpus.RIGHT_DOUBLE))
    first = submit(config, "ivan", toy.source_notebook(course))
    second = submit(config, "jane", slow)
    third = submit(config, "kim", toy.source_notebook(course))
    with open(tmp_path / "serve.log", "w") as log:
        proc = _serve(course, config_file, grading_env, log)
        try:
            _wait_for(lambda: config.db.is_file() and
                      _db_states(config.db).get(second, ("",))[0] == "grading")
            before = _db_states(config.db)
            assert before[first][0] == "graded"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            proc = _serve(course, config_file, grading_env, log)
            _wait_for(lambda: [s[0] for s in _db_states(config.db).values()] == ["graded"] * 3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    after = _db_states(config.db)
    assert after[first] == before[first]          # not graded again
    assert after[second][1] == 2 and after[third][1] == 1
    log_text = (tmp_path / "serve.log").read_text()
    assert "interrupted: queued again" in log_text, log_text[-3000:]
    assert proc.returncode == 0, log_text[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not toy.sandbox_ready(), reason="needs bubblewrap (make installs it)")
def test_a_hostile_submission_costs_only_its_own_grading(course, grading_env, tmp_path):
    """A fork bomb submitted next to an honest notebook, two workers: is the honest one graded
    right, the hostile one scored for what it did, and the service still grading after?"""
    config = make_config(tmp_path, course, workers=2)
    service = Service(config, run.Course.at(course))
    case = next(c for c in corpus.CASES if c.name == "fork_bomb")
    hostile = toy.with_answers(toy.source_notebook(course), **case.answers)
    keys = [submit(config, "mallory", hostile), submit(config, "nina", toy.source_notebook(course))]
    try:
        drain(service)
        after = submit(config, "oscar", toy.source_notebook(course))
        drain(service)
    finally:
        service.stop()
    scores = {k: service.store.get(k).gradescope()["score"] for k in keys + [after]}
    assert scores == {keys[0]: sum(case.expect.values()), keys[1]: 5.0, after: 5.0}


# --- through a real hub's OAuth -------------------------------------------------------------

def _hub_unavailable():
    from .fixtures.hub import hub_unavailable
    return hub_unavailable()


@pytest.mark.slow
@pytest.mark.skipif(_hub_unavailable() is not None, reason=str(_hub_unavailable()))
def test_through_a_real_hub_a_student_logs_in_and_sees_their_grade(course, grading_env,
                                                                     tmp_path_factory):
    """With `mnistkit serve` as a managed service of a real JupyterHub on loopback: does a
    student's browser-like session go through the hub's login and OAuth to their own page, their
    submission graded; is the queue an instructor's (a group) and not the student's?"""
    import http.cookiejar
    import shutil
    import tempfile
    import urllib.request

    from .fixtures.hub import PASSWORD, start_hub
    from .fixtures.jupyter_server import free_port
    from .fixtures.unix_accounts import accounts

    root = Path(tempfile.mkdtemp(prefix="mnistkit-serve-hub-"))
    root.chmod(0o755)
    try:
        with accounts(root / "home", "teach", "ada") as people:
            teach, ada = people["teach"], people["ada"]
            raw = {"exchange": str(root / "exchange"), "course_id": COURSE_ID,
                   "state_dir": str(root / "state"), "poll_seconds": 0.5, "settle_seconds": 1}
            (root / "serve.json").write_text(json.dumps(raw))
            config = serve_config.from_dict(raw, course)
            config.inbound.mkdir(parents=True)
            port = free_port()
            service = {"name": "grade", "url": f"http://127.0.0.1:{port}", "cwd": str(course),
                       "command": [sys.executable, "-m", "mnistkit", "serve", "--config",
                                   str(root / "serve.json")],
                       "oauth_no_confirm": True, "environment": dict(grading_env)}
            hub = start_hub(root / "hub", [teach, ada], services=[service], roles=[
                {"name": "user", "scopes": ["self", "access:services!service=grade"]}],
                extra_config=f"c.JupyterHub.load_groups = {{'instructors': {{'users': "
                             f"[{teach.name!r}]}}}}\n")
            try:
                tokens = {who.name: hub.token_for(who.name) for who in (teach, ada)}
                _wait_for(lambda: hub.get("/services/grade/api/me",
                                          tokens[ada.name]).status == 200, timeout=120, every=1)
                key = submit(config, ada.name, toy.source_notebook(course))
                _wait_for(lambda: json.loads(hub.get("/services/grade/api/me", tokens[ada.name])
                                             .read())["assignments"].get(toy.ASSIGNMENT, {})
                          .get("result"), timeout=300, every=1)
                assert hub.get("/services/grade/api/queue", tokens[ada.name]).status == 403
                assert hub.get("/services/grade/api/queue", tokens[teach.name]).status == 200
                # a browser's way: the service sends it to the hub, the hub's login form, the
                # OAuth redirects back, the service's page
                jar = http.cookiejar.CookieJar()
                browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
                login = browser.open(f"{hub.url}/services/grade/", timeout=30)
                assert "/hub/login" in login.geturl()
                xsrf = next(c.value for c in jar if c.name == "_xsrf")
                form = urlencode({"username": ada.name, "password": PASSWORD,
                                  "_xsrf": xsrf}).encode()
                page = browser.open(login.geturl(), data=form, timeout=60)
                body = page.read().decode()
                assert page.geturl().rstrip("/").endswith("/services/grade"), page.geturl()
                assert f"Grading on submit: {ada.name}" in body and "5.0 / 5.0" in body
                assert "graded" in body and key not in body
            finally:
                hub.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
