"""docs/jupyterhub.md, block by block: does what an administrator copies from the page work?

Every fenced block of the page has a ``<!-- hub: NAME -->`` marker before it, and every name is
checked here (``test_every_block_of_the_page_is_checked``), so the page and this file cannot
drift apart. What runs here, in temporary folders and against stand-ins:

- ``values``: the Zero to JupyterHub values are read with ``yaml.safe_load``; their
  ``hub.extraConfig`` Python is executed the way z2jh's ``jupyterhub_config.py`` does (``exec`` at
  module level, after ``singleuser.profileList`` became ``c.KubeSpawner.profile_list``), and the
  profile function and the uid function it installs are called with stand-in spawners (a
  student, an instructor); the ``postStart`` hook's shell command runs in a temporary ``HOME``;
- ``fastai-config``: the image's start-up lines, run in a temporary ``HOME``, write what
  ``mnistkit data --use`` writes;
- ``volumes``: read with ``yaml.safe_load_all``; the Job's own command (``mnistkit data --into``)
  runs here on a temporary folder;
- ``setup``: each ``mnistkit`` line is parsed by the kit's own command-line parser, and
  ``mnistkit data --use`` runs against a temporary home;
- ``instructor-config``: run in a temporary ``HOME`` whose ``~/mnistkit`` is this checkout;
  nbgrader's own configuration loading (what Formgrader calls) then finds the course from there.

Only parsed, not run: ``dockerfile`` (``docker build`` needs a registry's base image, and its
``pip``/``jupyter ... --sys-prefix`` lines write into an image's Python, not a test's) and
``deploy`` (``kubectl`` and ``helm`` need a Kubernetes cluster). Their content is checked against
the kit instead: the files they name exist or are written by ``mnistkit course init``, the
extensions they disable are the kit's instructor tools, the CPU build drops exactly torch's CUDA
runtime.

``requirements-student.lock`` is checked here too: it is requirements-student.in's dependency
closure, at requirements.lock's versions, with no dev-only package.
``.venv/bin/python -m tests.test_jupyterhub_doc`` rewrites it (after ``make lock``).

Everything runs in a few seconds: the MNIST folders come from the session's ``mnist_data_dir``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "jupyterhub.md"
LOCK = ROOT / "requirements.lock"
STUDENT_IN = ROOT / "requirements-student.in"
STUDENT_LOCK = ROOT / "requirements-student.lock"
DATA_PATH = "/srv/mnist"                  # the one path of the shared MNIST folder, every page
OTHER_DATA_PATHS = ("/srv/mnistkit/data",)
EXCHANGE = "/srv/nbgrader/exchange"
CUDA_MARK = "# cuda"                       # the lock's lines that only torch's CUDA build needs
DEV_ONLY = ("pytest", "pytest-xdist", "execnet", "hypothesis", "dask", "distributed",
            "playwright", "greenlet", "pluggy", "iniconfig")

BLOCK = re.compile(r"<!-- hub: ([\w-]+) -->\n```(\w*)\n(.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```\w*\n.*?^```", re.S | re.M)


def blocks() -> dict[str, str]:
    return {name: text for name, _lang, text in BLOCK.findall(PAGE.read_text())}


CHECKED = {"setup", "instructor-config", "fastai-config", "dockerfile", "volumes", "values",
           "deploy"}


def test_every_block_of_the_page_is_checked():
    """Does every fenced block carry a marker, and is every marker one this file checks?"""
    text = PAGE.read_text()
    assert len(FENCE.findall(text)) == len(BLOCK.findall(text)), \
        "a fenced block of docs/jupyterhub.md has no <!-- hub: NAME --> marker before it"
    assert set(blocks()) == CHECKED


def test_one_data_path_in_every_page():
    """Do the README, docs/ and the kit's code name the shared MNIST folder by one path?"""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "mnistkit").rglob("*.py"))]
    found = [f"{p.relative_to(ROOT)}: {other}" for p in pages for other in OTHER_DATA_PATHS
             if other in p.read_text()]
    assert not found, found
    assert DATA_PATH in (ROOT / "docs" / "data.md").read_text()


# --- values.yaml: the hub's Python, against stand-ins --------------------------------------

def values() -> dict:
    return yaml.safe_load(blocks()["values"])


def hub_config():
    """The traitlets config z2jh's jupyterhub_config.py builds from the values, then every
    ``hub.extraConfig`` snippet executed as z2jh does (sorted by key, module-level exec)."""
    from traitlets.config import Config

    chart = values()
    c = Config()
    c.KubeSpawner.profile_list = chart["singleuser"]["profileList"]
    c.KubeSpawner.fs_gid = chart["singleuser"]["fsGid"]
    c.KubeSpawner.uid = 1000            # z2jh's default singleuser.uid
    namespace = {"c": c}
    for _key, snippet in sorted(chart["hub"]["extraConfig"].items()):
        exec(compile(snippet, "jupyterhub_config.py", "exec"), namespace)
    return c


def spawner(config, user_id: int, *groups: str):
    """What the page's functions read of a KubeSpawner: its config and its hub user."""
    user = SimpleNamespace(id=user_id, name=f"user{user_id}",
                           groups=[SimpleNamespace(name=g) for g in groups])
    return SimpleNamespace(config=config, user=user)


def test_instructor_profile_is_offered_to_instructors_only():
    """Does a student get the two student profiles and an instructor all three?"""
    c = hub_config()
    choose = c.KubeSpawner.profile_list
    assert callable(choose)
    student, instructor = spawner(c, 7), spawner(c, 8, "instructors")
    assert [p["slug"] for p in choose(student)] == ["student", "student-gpu"]
    assert [p["slug"] for p in choose(instructor)] == ["student", "student-gpu", "instructor"]
    assert [p["slug"] for p in choose(student)] == ["student", "student-gpu"]   # every spawn
    # the stand-in is faithful: the profile list in the spawner's config is the function now,
    # which is why the function filters its own module-level copy
    with pytest.raises(TypeError):
        list(student.config.KubeSpawner.profile_list)


def test_every_user_gets_a_uid_of_their_own():
    """Are the uids distinct, stable from one spawn to the next, and clear of system and image
    accounts (0, 1000) and of 32-bit overflow?"""
    c = hub_config()
    uid = c.KubeSpawner.uid
    assert callable(uid)
    users = [spawner(c, n) for n in range(1, 5001)]
    uids = [uid(s) for s in users]
    assert len(set(uids)) == len(uids)
    assert uids == [uid(s) for s in users]
    assert all(100_000 <= u < 2**31 - 1 for u in uids)
    assert c.KubeSpawner.gid == 0 and c.KubeSpawner.fs_gid == 100


def test_every_server_mounts_mnist_read_only_at_the_one_path():
    """Is MNIST mounted read-only at /srv/mnist in every server, the exchange at nbgrader's
    path, and does no profile change the mounts?"""
    single = values()["singleuser"]
    volumes = {v["name"]: v for v in single["storage"]["extraVolumes"]}
    mounts = {m["name"]: m for m in single["storage"]["extraVolumeMounts"]}
    assert volumes["mnist"]["persistentVolumeClaim"]["readOnly"] is True
    assert mounts["mnist"] == {"name": "mnist", "mountPath": DATA_PATH, "readOnly": True}
    assert mounts["exchange"]["mountPath"] == EXCHANGE
    for profile in single["profileList"]:
        assert not {"volumes", "volume_mounts"} & set(profile["kubespawner_override"])


def test_gpu_profile_runs_the_cuda_image_and_the_others_the_cpu_image():
    """Do the two image tags go to the right profiles (CPU by default, CUDA for the GPU)?"""
    single = values()["singleuser"]
    assert single["image"]["tag"].endswith("-cpu")
    images = {p["slug"]: p["kubespawner_override"].get("image") for p in single["profileList"]}
    assert images["student"] is None
    assert images["student-gpu"] == f"{single['image']['name']}:" \
        + single["image"]["tag"].replace("-cpu", "-cuda")
    gpu = next(p for p in single["profileList"] if p["slug"] == "student-gpu")
    assert gpu["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}


def fastai_configs(tmp_path: Path, data: Path) -> dict[str, str]:
    """config.ini as written by the postStart hook, the image's start-up lines and
    `mnistkit data --use`, each in its own temporary home, with the home replaced by ~."""
    command = values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    image_lines = blocks()["fastai-config"]
    written = {}
    for name, argv in (("postStart", [c.replace(DATA_PATH, str(data)) for c in command]),
                       ("image", ["bash", "-c", image_lines.replace(DATA_PATH, str(data))])):
        home = tmp_path / name
        home.mkdir()
        subprocess.run(argv, env={**os.environ, "HOME": str(home)}, check=True, timeout=60)
        written[name] = (home / ".fastai" / "config.ini").read_text().replace(str(home), "~")
    home = tmp_path / "kit"
    proc = subprocess.run([sys.executable, "-m", "mnistkit", "data", "--use", str(data)],
                          cwd=ROOT, env={**os.environ, "HOME": str(home),
                                         "FASTAI_HOME": str(home / ".fastai")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    written["mnistkit data --use"] = (home / ".fastai" / "config.ini").read_text() \
        .replace(str(home), "~")
    return written


def test_students_fastai_config_is_what_mnistkit_data_use_writes(tmp_path, mnist_data_dir):
    """Do the hook and the image's start-up lines write the config.ini the kit writes?"""
    written = fastai_configs(tmp_path, Path(mnist_data_dir))
    assert written["postStart"] == written["image"] == written["mnistkit data --use"], written
    assert f"data = {mnist_data_dir}\n" in written["postStart"]
    for folder in ("archive", "tmp", "models"):   # fastai's lock file goes to archive/
        assert (tmp_path / "postStart" / ".fastai" / folder).is_dir()


# --- volumes: the Job that fills the MNIST volume ------------------------------------------

def volume_documents() -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d
            for d in yaml.safe_load_all(blocks()["volumes"])}


def test_the_job_writes_the_volume_every_server_reads():
    """Does the Job mount mnist-data writable at /srv/mnist and run `mnistkit data --into`
    there, while the exchange and the data are volumes every node can mount?"""
    docs = volume_documents()
    assert set(docs) == {"PersistentVolumeClaim/nbgrader-exchange",
                         "PersistentVolumeClaim/mnist-data", "Job/mnist-data"}
    for claim in ("nbgrader-exchange", "mnist-data"):
        assert docs[f"PersistentVolumeClaim/{claim}"]["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = docs["Job/mnist-data"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][-3:] == ["data", "--into", DATA_PATH]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == DATA_PATH and not mount.get("readOnly")
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["persistentVolumeClaim"] == {"claimName": "mnist-data"}
    claims = {v["persistentVolumeClaim"]["claimName"]
              for v in values()["singleuser"]["storage"]["extraVolumes"]}
    assert claims == {"nbgrader-exchange", "mnist-data"}


def test_the_jobs_command_runs_here(tmp_path, mnist_data_dir):
    """Does the Job's own command line, on a folder that already holds the data (the Job
    run twice), exit 0 and keep what is there?"""
    container = volume_documents()["Job/mnist-data"]["spec"]["template"]["spec"]["containers"][0]
    target = tmp_path / "mnist"
    target.mkdir()
    for folder in Path(mnist_data_dir).iterdir():
        (target / folder.name).symlink_to(folder)
    argv = [a.replace(DATA_PATH, str(target)) for a in container["command"]]
    assert Path(argv[0]).name == "mnistkit"
    proc = subprocess.run([sys.executable, "-m", "mnistkit", *argv[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "mnist_sample" in proc.stdout and "present" in proc.stdout


# --- the instructor's side -----------------------------------------------------------------

def mnistkit_lines(block: str) -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in block.splitlines()
            if line.startswith("mnistkit ")]


def test_setup_lines_are_commands_the_kit_has(tmp_path, mnist_data_dir):
    """Does the kit's own parser accept every `mnistkit` line of the set-up, and does
    `mnistkit data --use /srv/mnist` work (on a temporary home)?"""
    from mnistkit.cli import make_parser

    lines = mnistkit_lines(blocks()["setup"])
    assert [argv[1] for argv in lines] == ["data", "course"]
    for argv in lines:
        args = make_parser().parse_args(argv[1:])
        assert callable(args.func)
    data, course = (make_parser().parse_args(argv[1:]) for argv in lines)
    assert data.use == DATA_PATH and course.exchange == EXCHANGE
    argv = [a.replace(DATA_PATH, str(mnist_data_dir)) for a in lines[0]]
    proc = subprocess.run([sys.executable, "-m", "mnistkit", *argv[1:]], cwd=ROOT,
                          env={**os.environ, "FASTAI_HOME": str(tmp_path / ".fastai")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"data = {mnist_data_dir}" in (tmp_path / ".fastai" / "config.ini").read_text()


NBGRADER_SEES = """
import json, os
from nbgrader.apps.baseapp import NbGrader
app = NbGrader()
app.initialize([])
print(json.dumps({"root": app.coursedir.root, "course_id": app.coursedir.course_id,
                  "solutions": app.coursedir.solution_directory,
                  "check_owner": app.config.CollectApp.check_owner,
                  "inside_server_root": not os.path.relpath(app.coursedir.root,
                                                            os.getcwd()).startswith("..")}))
"""


def test_formgrader_finds_the_course_from_the_home_folder(tmp_path):
    """With the server started in ~ (z2jh), does nbgrader's configuration loading, the one
    Formgrader runs, find the course in ~/mnistkit and load the course's own configuration?"""
    home = tmp_path / "home"
    home.mkdir()
    (home / "mnistkit").symlink_to(ROOT)       # the instructor's clone
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_CONFIG_DIR", "JUPYTER_CONFIG_PATH")}
    env["HOME"] = str(home)
    subprocess.run(["bash", "-c", blocks()["instructor-config"]], cwd=home, env=env, check=True,
                   timeout=60)
    assert (home / ".jupyter" / "nbgrader_config.py").is_file()
    proc = subprocess.run([sys.executable, "-c", NBGRADER_SEES], cwd=home, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["root"] == str(home / "mnistkit")
    assert seen["solutions"] == "solutions"      # set by the course's own nbgrader_config.py
    assert seen["check_owner"] is False
    assert seen["inside_server_root"]


# --- parsed only: the image and the deployment ---------------------------------------------

def dockerfile_run() -> str:
    text = blocks()["dockerfile"].replace("\\\n", " ")
    return " ".join(line[4:] for line in text.splitlines() if line.startswith("RUN "))


def test_dockerfile_copies_only_what_students_may_have():
    """Does the image copy the student lock and the students' nbgrader configuration (what
    `mnistkit course init` writes), and nothing of the course?"""
    from mnistkit import course

    copies = [line.split()[1] for line in blocks()["dockerfile"].splitlines()
              if line.startswith("COPY ")]
    assert copies == ["requirements-student.lock",
                      str(course.STUDENT_CONFIG / "nbgrader_config.py")]
    assert (ROOT / copies[0]).is_file()


def test_dockerfile_hides_the_instructor_tools():
    """Does the image disable exactly the kit's list of instructor extensions?"""
    from mnistkit import course

    run = dockerfile_run()
    lab = re.findall(r"jupyter labextension disable --level=sys_prefix (\S+)", run)
    server = re.findall(r"jupyter server extension disable --sys-prefix (\S+)", run)
    assert sorted(lab) == sorted(course.INSTRUCTOR_LAB_PLUGINS)
    assert sorted(server) == sorted(course.INSTRUCTOR_SERVER_EXTENSIONS)


def test_cpu_image_takes_torch_from_the_cpu_index_at_the_locks_versions():
    """Does the CPU tag install torch and torchvision from PyTorch's CPU index at the lock's
    versions (2.14.1+cpu satisfies the lock's ==2.14.1, so pip keeps it), and drop exactly the
    lock's CUDA lines?"""
    run = dockerfile_run()
    assert "--index-url https://download.pytorch.org/whl/cpu" in run
    pins = dict(re.findall(r"\b(torch|torchvision)==(\S+?)\+cpu\b", run))
    locked = student_pins()
    assert pins == {"torch": locked["torch"], "torchvision": locked["torchvision"]}
    for name, version in pins.items():
        assert SpecifierSet(f"=={version}").contains(f"{version}+cpu")
    (grep,) = re.findall(r"grep -v '([^']+)' requirements-student\.lock", run)
    kept = [line for line in STUDENT_LOCK.read_text().splitlines() if not re.search(grep, line)]
    assert not [line for line in kept if CUDA_MARK in line]
    assert len(kept) == len(STUDENT_LOCK.read_text().splitlines()) - len(cuda_lines())


def test_deploy_commands_name_the_pages_files():
    """Do `kubectl apply` and `helm upgrade` use the files the page shows, and the chart's
    values?"""
    deploy = blocks()["deploy"]
    lines = {line.split()[1]: shlex.split(line) for line in deploy.splitlines()
             if line.split()[0] in ("kubectl", "helm")}
    assert lines["apply"][lines["apply"].index("-f") + 1] == "mnist-volumes.yaml"
    assert blocks()["volumes"].startswith("# mnist-volumes.yaml")
    assert lines["upgrade"][lines["upgrade"].index("--values") + 1] == "values.yaml"
    assert blocks()["values"].startswith("# values.yaml")
    assert {"--for=condition=complete", "job/mnist-data"} <= set(lines["wait"])
    namespaces = {argv[argv.index("--namespace") + 1] for argv in lines.values()
                  if "--namespace" in argv}
    assert namespaces == {lines["create"][-1]}      # all in the namespace created first


def test_page_links_the_grading_pages():
    """Does the page send readers to grading on submit and to Formgrader on a hub?"""
    text = PAGE.read_text()
    assert "(grade-on-submit.md)" in text and "(formgrader-on-a-hub.md)" in text


# --- requirements-student.lock -------------------------------------------------------------

def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[canonicalize_name(name)] = version
    return found


def student_pins() -> dict[str, str]:
    return pins(STUDENT_LOCK)


def cuda_lines() -> list[str]:
    return [line for line in STUDENT_LOCK.read_text().splitlines() if line.endswith(CUDA_MARK)]


def is_cuda_runtime(req: Requirement) -> bool:
    return req.name.startswith(("nvidia-", "cuda-")) or req.name == "triton"


def closure(roots, *, cuda: bool = True) -> set[str]:
    """The installed distributions ``roots`` need (markers and extras honoured), read from this
    venv's metadata; ``cuda=False`` leaves out torch's CUDA runtime."""
    seen, names = set(), set()
    stack = [(Requirement(r).name, frozenset()) for r in roots]
    while stack:
        name, extras = stack.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        names.add(canonicalize_name(name))
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
                continue
            if not cuda and canonicalize_name(name) == "torch" and is_cuda_runtime(req):
                continue
            stack.append((req.name, frozenset(req.extras)))
    return names


def student_roots() -> list[str]:
    return [line.split("#", 1)[0].strip() for line in STUDENT_IN.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def student_lock_text() -> str:
    """requirements-student.lock as it should read: the closure of requirements-student.in,
    in requirements.lock's order and versions, torch's CUDA runtime marked."""
    roots = student_roots()
    everything, without_cuda = closure(roots), closure(roots, cuda=False)
    lines = [
        "# Exact versions of what a student's server needs: requirements-student.in's packages "
        "and their",
        "# dependencies, at requirements.lock's versions (`.venv/bin/python -m "
        "tests.test_jupyterhub_doc`).",
        "# Lines with a `cuda` comment at their end are torch's CUDA runtime: the CPU image "
        "leaves them out",
        "# (docs/jupyterhub.md).",
        "# setuptools (torch and nbgrader need it) comes with the image's Python, as for "
        "requirements.lock.",
    ]
    for line in LOCK.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name = canonicalize_name(line.split("==")[0])
        if name in everything:
            lines.append(line if name in without_cuda else f"{line}  {CUDA_MARK}")
    return "\n".join(lines) + "\n"


def test_student_lock_is_the_closure_of_its_in_file():
    """Is requirements-student.lock up to date with requirements-student.in and requirements.lock?"""
    assert STUDENT_LOCK.read_text() == student_lock_text(), \
        "rewrite it: .venv/bin/python -m tests.test_jupyterhub_doc"


def test_student_lock_pins_requirements_lock_versions():
    """Is every pin of the student lock a pin of requirements.lock, same version?"""
    kit, student = pins(LOCK), student_pins()
    assert student and {name: kit.get(name) for name in student} == student
    assert "setuptools" not in student        # left to the image's Python, like requirements.lock


def test_student_lock_has_no_dev_only_package():
    """Does the student image go without the kit's test and cluster tools?"""
    student = student_pins()
    assert not [name for name in DEV_ONLY if canonicalize_name(name) in student]
    for root in ("torch", "torchvision", "fastai", "nbgrader", "jupyterlab", "ipykernel"):
        assert root in student


def test_cuda_lines_are_exactly_torchs_cuda_runtime():
    """Are the lines the CPU image drops exactly what only torch's CUDA build needs?"""
    marked = {canonicalize_name(line.split("==")[0]) for line in cuda_lines()}
    roots = student_roots()
    assert marked == closure(roots) - closure(roots, cuda=False)
    assert "torch" not in marked and all(m.startswith(("nvidia-", "cuda-")) or m == "triton"
                                         for m in marked)


def test_student_lock_provides_what_the_notebooks_import():
    """Is every module the released notebooks import either the standard library, a file
    released beside them, or a package of the student lock?"""
    providers = metadata.packages_distributions()
    student = set(student_pins())
    local = {p.stem for p in (ROOT / "release").glob("*/*.py")}
    missing = set()
    for path in (ROOT / "release").glob("*/*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for module in re.findall(r"^\s*(?:from|import)\s+(\w+)", "".join(cell["source"]), re.M):
                if module in sys.stdlib_module_names or module in local:
                    continue
                if not {canonicalize_name(d) for d in providers.get(module, [])} & student:
                    missing.add(module)
    assert not missing


if __name__ == "__main__":           # rewrite requirements-student.lock
    STUDENT_LOCK.write_text(student_lock_text())
    print(f"wrote {STUDENT_LOCK.relative_to(ROOT)}: {len(student_pins())} packages, "
          f"{len(cuda_lines())} of them torch's CUDA runtime")
