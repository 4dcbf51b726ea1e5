"""The Dagster instance home of a data root: ``<data>/.dagster`` with its ``dagster.yaml``.

Every front door (each ``mia`` command, ``make ui``, CI) derives the instance from the data root,
so the UI, the CLI and the disk always talk about the same data. No Dagster import here.

The instance profile is the data root's own: the package's ``dagster.yaml`` (SQLite under
``<data>/.dagster``) unless ``mia init --instance FILE`` chose another (e.g.
``deploy/dagster.postgres.yaml``); the choice is kept in ``<data>/.dagster/instance-profile`` and every
later command keeps that root's ``dagster.yaml`` as it is, whatever its environment.
"""

from __future__ import annotations

from pathlib import Path

from mia_pipeline.layout import Layout
from mia_pipeline.storage import atomic_write_bytes

INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")


# The code location as `make ui` names it: Dagster's own CLI (`dagster sensor start|stop ... -w`) can
# address this instance's sensors from any directory with this file.
WORKSPACE = (b"load_from:\n  - python_module:\n      module_name: mia_pipeline.definitions\n"
             b"      location_name: mia_pipeline\n")


def _write_if_changed(target: Path, wanted: bytes) -> None:
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        current = None
    if current != wanted:
        atomic_write_bytes(target, wanted)


PROFILE_MARKER = "instance-profile"
DEFAULT_PROFILE = "default"


class ProfileError(ValueError):
    """An instance profile that cannot be used (said with how to fix it)."""


def instance_profile(layout: Layout) -> str:
    """Where the data root's ``dagster.yaml`` came from: ``default`` (the package's, SQLite) or the path
    given to ``mia init --instance``."""
    try:
        return (layout.dagster_dir / PROFILE_MARKER).read_text(encoding="utf-8").strip() or DEFAULT_PROFILE
    except FileNotFoundError:
        return DEFAULT_PROFILE


def read_profile(path: str | Path) -> bytes:
    """A profile file's bytes, refused unless it is a readable YAML mapping (a Dagster instance config)."""
    import yaml

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read the instance profile {path}: {exc.strerror or exc}") from None
    if len(data) > 1 << 20:
        raise ProfileError(f"{path} is {len(data):,} bytes: a Dagster instance config is a small YAML file")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path} is not a YAML file ({type(exc).__name__}); give a dagster.yaml such as "
                           "deploy/dagster.postgres.yaml") from None
    if not isinstance(doc, dict):
        raise ProfileError(f"{path} is not a Dagster instance config (a YAML mapping such as "
                           "deploy/dagster.postgres.yaml)")
    return data


def set_instance_profile(layout: Layout, profile: str | Path) -> tuple[bytes | None, str | None]:
    """Make ``profile`` (a file, or ``default``) the data root's instance config. Returns what was there
    before (config bytes, marker text) so a caller that cannot open the new instance can put it back."""
    home = layout.dagster_dir
    home.mkdir(parents=True, exist_ok=True)
    before = _read(home / "dagster.yaml"), _read_text(home / PROFILE_MARKER)
    if str(profile) == DEFAULT_PROFILE:
        _write_if_changed(home / "dagster.yaml", INSTANCE_CONFIG.read_bytes())
        (home / PROFILE_MARKER).unlink(missing_ok=True)
    else:
        data = read_profile(profile)
        _write_if_changed(home / "dagster.yaml", data)
        _write_if_changed(home / PROFILE_MARKER, f"{Path(profile).resolve()}\n".encode())
    return before


def restore_instance_profile(layout: Layout, before: tuple[bytes | None, str | None]) -> None:
    """Put back what :func:`set_instance_profile` replaced."""
    home = layout.dagster_dir
    config, marker = before
    if config is None:
        (home / "dagster.yaml").unlink(missing_ok=True)
    else:
        _write_if_changed(home / "dagster.yaml", config)
    if marker is None:
        (home / PROFILE_MARKER).unlink(missing_ok=True)
    else:
        _write_if_changed(home / PROFILE_MARKER, marker.encode())


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _read_text(path: Path) -> str | None:
    data = _read(path)
    return None if data is None else data.decode("utf-8", "replace")


def ensure_dagster_home(layout: Layout) -> Path:
    """Create ``<data>/.dagster`` with the instance config and a workspace.yaml naming the code location
    (each rewritten only when it changed); return it. A root whose profile was chosen with ``mia init
    --instance`` keeps its ``dagster.yaml``; the default one follows the package's."""
    home = layout.dagster_dir
    home.mkdir(parents=True, exist_ok=True)
    profile = instance_profile(layout)
    if profile == DEFAULT_PROFILE:
        _write_if_changed(home / "dagster.yaml", INSTANCE_CONFIG.read_bytes())
    elif not (home / "dagster.yaml").exists():  # lost: copied again from its profile, never replaced by SQLite
        try:
            _write_if_changed(home / "dagster.yaml", read_profile(profile))
        except ProfileError as exc:
            raise ProfileError(f"{home / 'dagster.yaml'} is missing and its profile cannot be read ({exc}); run "
                               "`mia init --instance FILE` (or `--instance default` for SQLite)") from None
    _write_if_changed(home / "workspace.yaml", WORKSPACE)
    return home
