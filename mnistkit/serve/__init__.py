"""`mnistkit serve`: grade on submit, as a JupyterHub service (docs/grade-on-submit.md).

One job per module: ``config`` (the service's typed configuration), ``store`` (every submission,
result and request in SQLite), ``watcher`` (new submissions in nbgrader's inbound folder),
``queue`` (what is graded next: order, rate limit, pause, deadline), ``service`` (the loop that
grades with the same engine as ``mnistkit grade``), ``feedback`` (what a student may see),
``app`` (the tornado handlers behind the hub's OAuth) and ``cli`` (the verb's arguments).
"""
