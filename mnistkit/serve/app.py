"""The service's web side: tornado handlers behind the hub's own OAuth, and ``mnistkit serve``.

Why tornado and ``HubOAuthenticated``: JupyterHub's services are tornado applications, and the
hub's OAuth gives the service the hub user's name and groups with no password of its own: a
student is who the hub says, and sees only their own submissions. Instructors are hub admins,
users named in ``instructors``, or members of an ``instructor_groups`` group; they see the whole
queue and can pause, resume, close an assignment (its deadline, now) and publish it (for the
``after_published`` exercises). Every request is logged in the store.

Routes, under the service's prefix (``$JUPYTERHUB_SERVICE_PREFIX``, e.g.
``/services/grade-on-submit/``):

    GET  ""              the student's page (HTML)       GET  "api/me"     the same as JSON
    GET  "queue"         the instructor's page           GET  "api/queue"  the same as JSON
    POST "api/pause", "api/resume", "api/close", "api/reopen", "api/publish" (instructors;
         ``assignment=NAME`` for the last three; xsrf-checked as the hub's own pages are)
    GET  "oauth_callback" the hub's OAuth callback
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from tornado import web

from mnistkit.grading.results import clean_line
from mnistkit.serve import feedback
from mnistkit.serve.config import ServeConfig
from mnistkit.serve.service import Service
from mnistkit.serve.store import Store

try:   # jupyterhub is needed to run the service, not to import this module (docs, tests)
    from jupyterhub.services.auth import (HubOAuth, HubOAuthCallbackHandler,
                                          HubOAuthenticated)
except ImportError:   # pragma: no cover - the kit's lock has jupyterhub
    HubOAuth = HubOAuthCallbackHandler = None

    class HubOAuthenticated:   # type: ignore[no-redef]
        pass

if HubOAuthCallbackHandler is not None:
    class OAuthCallback(HubOAuthCallbackHandler):
        """The hub's OAuth callback, with the service's own ``HubOAuth``."""

        def initialize(self, hub_auth) -> None:
            self.hub_auth = hub_auth

ACTIONS = ("pause", "resume", "close", "reopen", "publish")


def is_instructor(user: dict, config: ServeConfig) -> bool:
    return bool(user.get("admin")) or user.get("name") in config.instructors \
        or bool(set(user.get("groups") or ()) & set(config.instructor_groups))


class _Base(HubOAuthenticated, web.RequestHandler):
    def initialize(self, store: Store, config: ServeConfig, hub_auth) -> None:
        self.store, self.config = store, config
        self.hub_auth = hub_auth

    def on_finish(self) -> None:
        user = getattr(self, "_hub_auth_user_cache", None)
        self.store.log_request(user.get("name") if user else None, self.request.method,
                               self.request.path, self.get_status())

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                        "form-action 'self'; frame-ancestors 'self'")
        self.set_header("X-Content-Type-Options", "nosniff")

    def instructor(self) -> dict:
        user = self.current_user
        if not is_instructor(user, self.config):
            raise web.HTTPError(403, "instructors only")
        return user

    def write_json(self, data: dict) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.write(json.dumps(data, indent=1))


class StudentPage(_Base):
    @web.authenticated
    def get(self):
        view = feedback.student_view(self.store, self.config, self.current_user["name"])
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(feedback.student_html(view))


class StudentApi(_Base):
    @web.authenticated
    def get(self):
        self.write_json(feedback.student_view(self.store, self.config, self.current_user["name"]))


class QueuePage(_Base):
    @web.authenticated
    def get(self):
        self.instructor()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        token = self.xsrf_token
        self.write(feedback.queue_html(feedback.queue_view(self.store, self.config),
                                       token.decode() if isinstance(token, bytes) else token))


class QueueApi(_Base):
    @web.authenticated
    def get(self):
        self.instructor()
        self.write_json(feedback.queue_view(self.store, self.config))


class Control(_Base):
    @web.authenticated
    def post(self, action: str):
        user = self.instructor()
        who = user["name"]
        if action in ("pause", "resume"):
            self.store.set_control("paused", str(time.time()) if action == "pause" else None,
                                   who, action)
        else:
            assignment = self.get_argument("assignment", "")
            if not assignment or len(assignment) > 200:
                raise web.HTTPError(400, "give assignment=NAME")
            name = {"close": "closed", "reopen": "closed", "publish": "published"}[action]
            value = None if action == "reopen" else str(time.time())
            self.store.set_control(f"{name}:{assignment}", value, who,
                                   f"{action} {clean_line(assignment, 200)}")
        if "text/html" in self.request.headers.get("Accept", ""):
            self.redirect(self.reverse_url("queue"))
            return
        self.write_json(feedback.queue_view(self.store, self.config))


def make_app(store: Store, config: ServeConfig, hub_auth, prefix: str = "/",
             cookie_secret: bytes | None = None) -> web.Application:
    """The tornado application; ``hub_auth``: a ``HubOAuth`` (tests pass a stand-in with the
    same ``get_user(handler)``)."""
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    args = dict(store=store, config=config, hub_auth=hub_auth)
    routes = [web.url(prefix, StudentPage, args, name="student"),
              web.url(prefix + "api/me", StudentApi, args),
              web.url(prefix + "queue", QueuePage, args, name="queue"),
              web.url(prefix + "api/queue", QueueApi, args),
              web.url(prefix + f"api/({'|'.join(ACTIONS)})", Control, args)]
    if HubOAuthCallbackHandler is not None:
        routes.append(web.url(prefix + "oauth_callback", OAuthCallback, dict(hub_auth=hub_auth)))
    return web.Application(routes, cookie_secret=cookie_secret or secrets.token_bytes(32),
                           xsrf_cookies=True, login_url=getattr(hub_auth, "login_url", None))


def _where(args) -> tuple[str, int, str]:
    """(ip, port, prefix): the hub's environment for a managed service, else the options."""
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    if url and args.port is None:
        parsed = urlparse(url)
        return parsed.hostname or "127.0.0.1", parsed.port or 80, prefix
    return args.ip, args.port or 10101, prefix


def main(args) -> int:
    """``mnistkit serve``: the grading loop in a thread, the web app on the main loop, until
    SIGTERM or Ctrl-C (gradings under way are queued again for the next start)."""
    import asyncio

    from mnistkit.errors import KitError
    from mnistkit.grading import run
    from mnistkit.serve import config as serve_config

    course = run.Course.default()
    root = course.source.parent
    config = serve_config.load(Path(args.config) if args.config else None, root)
    for assignment in course.assignments():
        try:
            run.check_can_grade(assignment, course)
        except run.GradingUnavailable as exc:
            raise KitError(str(exc)) from None
    if HubOAuth is None:
        raise KitError("jupyterhub is not installed in this environment (pip install "
                       "jupyterhub; see docs/grade-on-submit.md)")
    say = lambda line: print(line, flush=True)   # noqa: E731
    store = Store(config.db)
    service = Service(config, course, store, say=say)
    ip, port, prefix = _where(args)
    hub_auth = HubOAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
    app = make_app(store, config, hub_auth, prefix)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        server = app.listen(port, address=ip, xheaders=True)
        say(f"mnistkit serve: {config.inbound} -> {config.db}; http://{ip}:{port}{prefix} "
            f"({config.workers} worker(s), every {config.poll_seconds:g} s)")
        service.start()
        await stop.wait()
        server.stop()

    try:
        asyncio.run(serve())
    finally:
        service.stop()
        store.close()
    print("mnistkit serve: stopped; gradings under way are queued again", file=sys.stderr)
    return 0
