"""What each service needs to run in a container: port, database, public entry, scaling, settings.

The environment a container gets is derived from the service's settings class
(`services/<name>/config.py`, a subclass of `shared.config.PlatformSettings`), so the CloudFormation
templates and the compose file can be checked against the variables the code actually reads.
"""

import importlib
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from shared.access.config import AccessSettings
from shared.config import PLACEHOLDER_SECRETS, PlatformSettings

ScalingKind = Literal["queue-depth", "request-count", "cpu"]


@dataclass(frozen=True)
class ServiceDeploy:
    name: str
    port: int
    uses_database: bool  # owns tables (migrations/versions/<name>/) and so gets DATABASE_URL
    public: bool  # reachable through the load balancer (cameras -> ingest, analysts -> reporting)
    scaling: ScalingKind
    cpu: int  # Fargate CPU units
    memory: int  # MiB
    # Setting holding a key prefix of the frames bucket where the service keeps its own records (read+write).
    records_prefix_setting: str | None = None
    # The service's retention runs set the frames bucket's lifecycle expiry (reporting).
    sets_bucket_lifecycle: bool = False

    @property
    def title(self) -> str:
        return self.name.capitalize()


SERVICES: tuple[ServiceDeploy, ...] = (
    ServiceDeploy("ingest", 8080, uses_database=True, public=True, scaling="request-count", cpu=512, memory=1024),
    ServiceDeploy(
        "detector",
        8081,
        uses_database=False,
        public=False,
        scaling="queue-depth",
        cpu=2048,
        memory=4096,
        records_prefix_setting="results_prefix",  # per-frame idempotency records
    ),
    ServiceDeploy(
        "notifier",
        8082,
        uses_database=True,
        public=False,
        scaling="queue-depth",
        cpu=512,
        memory=1024,
        records_prefix_setting="alert_frames_prefix",  # the face-blurred frame copies alerts link to
    ),
    ServiceDeploy(
        "reporting",
        8083,
        uses_database=True,
        public=True,
        scaling="cpu",
        cpu=512,
        memory=1024,
        records_prefix_setting="snapshots_prefix",  # each camera's face-blurred snapshot (zone editor)
        sets_bucket_lifecycle=True,
    ),
)

# Variables read by something other than a settings class, per reader. Anything else a container sets
# must be a settings field, or it is a typo that silently does nothing.
NON_SETTINGS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "botocore credential chain",
    "AWS_SECRET_ACCESS_KEY": "botocore credential chain",
    "AWS_DEFAULT_REGION": "botocore",
    "PPE_MODEL_DIR": "model_workshop.model_store (where the baked models live)",
}

# Settings classes a service reads beside its own: sign-in (PPE_SESSION_KEY...) in every service that accepts
# users (shared.access; services/<name>/main.py builds its Access with AccessSettings()).
EXTRA_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "ingest": (AccessSettings,), "notifier": (AccessSettings,), "reporting": (AccessSettings,),
}

SECRET_NAME = re.compile(r"(token|secret|password|api_key|secrets_key|session_key)$")


@dataclass(frozen=True)
class EnvSetting:
    env: str  # the environment variable name
    field: str
    required: bool  # must be given a value: no default, or a secret whose default is a placeholder ("")
    secret: bool


def service(name: str) -> ServiceDeploy:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service named {name!r} (known: {[s.name for s in SERVICES]})")


class SettingsClassError(RuntimeError):
    """A service's config module does not hold exactly one PlatformSettings subclass."""


def settings_class(name: str) -> type[PlatformSettings] | None:
    """The service's settings class, or None while `services/<name>/config.py` does not exist yet."""
    module_name = f"services.{name}.config"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, PlatformSettings)
        and obj is not PlatformSettings
        and obj.__module__ == module_name
    ]
    # A settings class the service's own extends (e.g. reporting's ExportSettings for its export command) is
    # part of it: the service's class is the one nothing else in the module derives from.
    found = [cls for cls in found if not any(other is not cls and issubclass(other, cls) for other in found)]
    if len(found) != 1:
        raise SettingsClassError(
            f"{module_name} must define exactly one PlatformSettings subclass, found {[c.__name__ for c in found]}"
        )
    return found[0]


def _env_name(prefix: str, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias.upper()
    if alias is not None:
        raise SettingsClassError(f"field {name!r}: only plain string aliases are supported, got {alias!r}")
    return f"{prefix}{name}".upper()


def _is_secret(name: str, field: FieldInfo) -> bool:
    return field.annotation is SecretStr or bool(SECRET_NAME.search(name))


def _needs_value(field: FieldInfo, secret: bool) -> bool:
    if field.is_required():
        return True
    # A secret defaulting to "" is refused at start (shared.config.require_secret): it must be set.
    return secret and isinstance(field.default, str) and field.default.strip().lower() in PLACEHOLDER_SECRETS


def env_settings(cls: type[BaseSettings]) -> list[EnvSetting]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    settings = []
    for name, field in cls.model_fields.items():
        secret = _is_secret(name, field)
        settings.append(EnvSetting(_env_name(prefix, name, field), name, _needs_value(field, secret), secret))
    return settings


def service_env_settings(name: str) -> tuple[list[EnvSetting], bool]:
    """(settings, provisional): provisional while the service has no config.py yet.

    Until then the service is assumed to read the shared settings plus `<NAME>_PORT` and `<NAME>_HOST`,
    the conventions in docs/architecture.md.
    """
    cls = settings_class(name)
    if cls is not None:
        return env_settings(cls) + [s for extra in EXTRA_SETTINGS.get(name, ()) for s in env_settings(extra)], False
    upper = name.upper()
    provisional = env_settings(PlatformSettings) + [
        EnvSetting(f"{upper}_PORT", "port", False, False),
        EnvSetting(f"{upper}_HOST", "host", False, False),
    ]
    return provisional, True


def records_prefix(spec: ServiceDeploy) -> str | None:
    """The service's own key prefix in the frames bucket: the default of its records_prefix_setting."""
    if spec.records_prefix_setting is None:
        return None
    cls = settings_class(spec.name)
    if cls is None or spec.records_prefix_setting not in cls.model_fields:
        return None
    default = cls.model_fields[spec.records_prefix_setting].default
    if not isinstance(default, str) or not default.endswith("/") or default.startswith("frames/"):
        raise SettingsClassError(f"{spec.name}.{spec.records_prefix_setting} must be a key prefix ending in '/'")
    return default
