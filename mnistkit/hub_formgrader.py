"""Formgrader on a JupyterHub: in a browser tab of its own (docs/jupyterhub.md).

From JupyterHub 4.1 on, every single-user server sends ``Content-Security-Policy:
frame-ancestors 'none'``: no page of the server may be shown in a frame, not even by JupyterLab
from the same server. nbgrader's Formgrader opens in JupyterLab as an iframe
(``/user/<name>/formgrader``), so under a hub its tab is blank (nbgrader #1870, #1910, #1919;
the fix, #1915, was reverted for security in #1947). The same page opened as a page of its own
is not framed and works. The kit keeps the hub's policy as it is and changes the instructor's
JupyterLab instead: ``write_instructor_config(folder)`` writes, into a Jupyter configuration
folder (the instructor's ``~/.jupyter``),

- ``labconfig/page_config.json``: nbgrader's menu plugin (``@jupyter/nbgrader:menu``) disabled
  (its Formgrader item opens the blank iframe);
- ``lab/user-settings/@jupyterlab/mainmenu-extension/plugin.jupyterlab-settings``: an
  **Nbgrader** menu in its place, with nbgrader's own Assignment List and Courses, and
  **Formgrader** opening ``<hub prefix>user-redirect/formgrader/`` in a new browser tab
  (JupyterLab's ``help:open`` command; the hub sends each user to their own server).

Existing settings in both files are kept (merged). Run as the instructor:
``python -m mnistkit.hub_formgrader`` (``--into DIR``, ``--hub-prefix /hub/``); for an
instructors' image, ``--overrides <sys.prefix>/share/jupyter/lab/settings/overrides.json`` and
``jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:menu``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

MENU_PLUGIN = "@jupyter/nbgrader:menu"
MAINMENU_SETTINGS = Path("lab") / "user-settings" / "@jupyterlab" / "mainmenu-extension" / \
    "plugin.jupyterlab-settings"
MENU_ID = "jp-mainmenu-nbgrader"
LABEL = "Formgrader"


def formgrader_url(hub_prefix: str = "/hub/") -> str:
    """Where Formgrader opens: the hub's user-redirect to the instructor's own server."""
    return hub_prefix.rstrip("/") + "/user-redirect/formgrader/"


def nbgrader_menu(hub_prefix: str = "/hub/") -> dict:
    """The Nbgrader menu, as a JupyterLab main-menu setting: nbgrader's items, Formgrader in a
    tab of its own."""
    return {"id": MENU_ID, "label": "Nbgrader", "rank": 1000, "items": [
        {"command": "nbgrader:open-assignment-list", "rank": 1},
        {"command": "nbgrader:open-course-list", "rank": 2},
        {"command": "help:open", "rank": 3,
         "args": {"url": formgrader_url(hub_prefix), "text": LABEL, "newBrowserTab": True}},
    ]}


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    text = path.read_text().strip()
    return json.loads(text) if text else {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_instructor_config(folder: Path, hub_prefix: str = "/hub/") -> list[Path]:
    """Write (merge) the two files into the Jupyter configuration folder ``folder``; returns
    their paths."""
    folder = Path(folder)
    page_config = folder / "labconfig" / "page_config.json"
    config = _read_json(page_config)
    config.setdefault("disabledExtensions", {})[MENU_PLUGIN] = True
    _write_json(page_config, config)

    settings_path = folder / MAINMENU_SETTINGS
    settings = _read_json(settings_path)
    menus = [m for m in settings.get("menus", []) if m.get("id") != MENU_ID]
    settings["menus"] = [*menus, nbgrader_menu(hub_prefix)]
    _write_json(settings_path, settings)
    return [page_config, settings_path]


def write_overrides(path: Path, hub_prefix: str = "/hub/") -> Path:
    """For an image: the same menu in JupyterLab's ``overrides.json`` (``path``, e.g.
    ``<sys.prefix>/share/jupyter/lab/settings/overrides.json``; merged). The menu plugin is
    then disabled at the image's level: ``jupyter labextension disable --level=sys_prefix
    @jupyter/nbgrader:menu``."""
    path = Path(path)
    overrides = _read_json(path)
    plugin = overrides.setdefault("@jupyterlab/mainmenu-extension:plugin", {})
    menus = [m for m in plugin.get("menus", []) if m.get("id") != MENU_ID]
    plugin["menus"] = [*menus, nbgrader_menu(hub_prefix)]
    _write_json(path, overrides)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistkit.hub_formgrader",
        description="Make JupyterLab's Nbgrader menu open Formgrader in a browser tab of its own "
                    "(on a JupyterHub, whose Content-Security-Policy blanks it in a JupyterLab "
                    "tab). Run as the instructor; reload JupyterLab afterwards.")
    default = os.environ.get("JUPYTER_CONFIG_DIR") or str(Path.home() / ".jupyter")
    parser.add_argument("--into", default=default,
                        help="the Jupyter configuration folder (default: %(default)s)")
    parser.add_argument("--hub-prefix", default="/hub/",
                        help="the hub's URL prefix (default: %(default)s; JupyterHub's "
                             "base_url + 'hub/')")
    parser.add_argument("--overrides", metavar="FILE",
                        help="write the menu into this JupyterLab overrides.json instead (an "
                             "image's <sys.prefix>/share/jupyter/lab/settings/overrides.json); "
                             f"then disable {MENU_PLUGIN} with `jupyter labextension disable`")
    args = parser.parse_args(argv)
    if args.overrides:
        print(f"wrote {write_overrides(Path(args.overrides), args.hub_prefix)}")
        print(f"now: jupyter labextension disable --level=sys_prefix {MENU_PLUGIN}")
    else:
        for path in write_instructor_config(Path(args.into), args.hub_prefix):
            print(f"wrote {path}")
    print(f"Formgrader now opens in a new browser tab: {formgrader_url(args.hub_prefix)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
