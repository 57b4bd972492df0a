"""The documentation as a newcomer meets it: a short README whose commands are the real ones, links that
resolve inside the repository, nothing that points at a build machine, and packaging that installs what
the README promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
APP_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -r requirements.txt "
               "&& .venv/bin/python app.py")
TEST_COMMAND = "bash .ci/run"
# Text that points outside the repository or at how it was made; built from pieces so that this file does
# not match its own search.
FORBIDDEN = [re.compile("FIND" + "INGS"), re.compile("/work" + "/main"), re.compile("this " + "task", re.I),
             re.compile(r"\bissue" + r" \d", re.I)]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked-file checks need git")
    return [name for name in out.decode().split("\0") if name]


def doc_pages() -> list[Path]:
    """README.md and the tracked pages under docs/ (what a fresh clone holds)."""
    return [README, *sorted(REPO / name for name in tracked_files() if re.fullmatch(r"docs/[^/]+\.md", name))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold commands, not links
    return LINK.findall(text)


def test_readme_is_short_and_keeps_the_space_front_matter():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; keep it a front door (≤ 250) and move detail to docs/"
    assert lines[0] == "---", "README.md must start with the Hugging Face Space front matter"
    front = lines[1:lines.index("---", 1)]
    for key in ("sdk: gradio", "app_file: app.py"):
        assert key in front, f"the Space front matter lost '{key}'"


def test_every_relative_link_resolves_inside_the_repository():
    tracked = set(tracked_files())
    broken = []
    for page in doc_pages():
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)} → {target}"
            if not file.is_relative_to(REPO):
                broken.append(f"{where}: points outside the repository")
            elif not file.exists() or (file.is_file() and str(file.relative_to(REPO)) not in tracked):
                broken.append(f"{where}: no such tracked file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{where}: no heading with that anchor")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_no_tracked_file_points_outside_the_repository_or_at_its_making():
    hits = []
    for name in tracked_files():
        path = REPO / name
        if not path.is_file():
            continue  # deleted in the working tree
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: clips, weights, vectors, images
        text = data.decode("utf-8", errors="replace")
        hits += [f"{name}: contains '{match.group()}'" for pattern in FORBIDDEN if (match := pattern.search(text))]
    assert not hits, "\n".join(hits)


def test_readme_commands_are_the_real_ones():
    text = README.read_text()
    commands = text.split("## Two commands", 1)[1].split("```", 2)[1]
    assert APP_COMMAND in commands, "the README's first command (start the app) changed: update it and this test"
    assert TEST_COMMAND in commands, "the README's second command (run the tests) changed: update it and this test"
    run = (REPO / ".ci" / "run").read_text().splitlines()
    steps = [line.strip() for line in run if line.strip() and not line.strip().startswith("#")]
    torch_step = next(i for i, s in enumerate(steps) if "install" in s and "torch==2.13.0" in s)
    extra_step = next(i for i, s in enumerate(steps) if re.search(r'pip" install .*-e "\.\[test\]"', s))
    assert torch_step < extra_step, ".ci/run must install the pinned CPU torch before the package's extras"
    assert "-m pytest" in steps[-1], ".ci/run must end by running the test suite"


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_requirements_txt_and_pyproject_list_the_same_dependencies():
    """The Space installs requirements.txt, pip installs pyproject.toml: the two must not drift apart."""
    listed = {_name(line.split("#")[0]) for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()}
    declared = {_name(r) for r in _pyproject()["project"]["dependencies"]}
    assert listed == declared, f"only in requirements.txt: {listed - declared}; only in pyproject: {declared - listed}"


def test_extras_and_console_script():
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    for extra in ("ray", "alltracker", "cuda", "test"):
        assert extra in extras, f"pyproject.toml has no [{extra}] extra"
    assert any(_name(r) == "ray" for r in extras["ray"])
    assert any(r.replace(" ", "").startswith("motive-studio[ray]") for r in extras["test"]) or \
        any(_name(r) == "ray" for r in extras["test"]), "the test extra must bring Ray (the scale-out tests use it)"
    assert project["scripts"]["motive"] == "motive_core.cli:main"


def test_installed_packages_are_every_engine_package_and_not_the_benchmarks():
    setuptools = pytest.importorskip("setuptools")
    config = _pyproject()["tool"]["setuptools"]
    if "packages" in config and isinstance(config["packages"], list):
        installed = set(config["packages"])
    else:
        find = config["packages"]["find"]
        installed = set(setuptools.find_packages(str(REPO), include=find.get("include", ["*"]),
                                                 exclude=find.get("exclude", [])))
    present = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "motive_core").rglob("__init__.py")}
    assert present <= installed, f"packages not installed: {sorted(present - installed)}"
    assert not any(p.split(".")[0] in ("benchmarks", "tests") for p in installed)


def test_console_script_returns_an_exit_code(tmp_path):
    """``motive`` calls cli.main and exits with its return value: 0 for help, non-zero for a bad input."""
    from motive_core.cli import main

    code = main(["mask", "--video", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out")])
    assert isinstance(code, int) and code != 0
    done = subprocess.run([sys.executable, "-m", "motive_core", "build-index", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--ray" in done.stdout


def test_results_page_holds_the_saved_tables():
    """docs/results.md carries exactly the tables in benchmarks/results/ (python -m benchmarks.update_docs)."""
    from benchmarks import update_docs

    doc = update_docs.DOC.read_text()
    assert update_docs.render(doc) == doc, "docs/results.md is out of date: run python -m benchmarks.update_docs"
