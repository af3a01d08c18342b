"""The `mnistkit serve` verb: its arguments, and the hand-over to the service (``app.main``).

Apart from ``mnistkit/cli.py`` so that the kit's command line stays one short module, and light:
building the parser imports neither tornado nor jupyterhub (``app`` is imported only to run).
"""
from __future__ import annotations

from pathlib import Path

from mnistkit.errors import UsageError


def add_parser(verbs, positive_int) -> None:
    p = verbs.add_parser("serve", help="grade on submit: a JupyterHub service (rate-limited)",
                         description="Watch the exchange's inbound folder, grade each new "
                         "submission with the same engine as `mnistkit grade` (rate-limited per "
                         "student and assignment, deadline, pause), keep everything in SQLite, "
                         "and show each student their place, next grading and feedback behind "
                         "the hub's OAuth. Run by JupyterHub as a managed service: "
                         "docs/grade-on-submit.md.")
    p.add_argument("--config", metavar="FILE", help="the service's JSON configuration "
                   "(default: .mnistkit/serve.json in the course, when present)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on when not run by the "
                   "hub (default: 127.0.0.1)")
    p.add_argument("--port", type=positive_int, metavar="N", help="port (default: the hub's "
                   "JUPYTERHUB_SERVICE_URL, else 10101)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.config and not Path(args.config).is_file():
        raise UsageError(f"--config {args.config}: no such file")
    from mnistkit.serve import app   # tornado and jupyterhub only now
    return app.main(args)
