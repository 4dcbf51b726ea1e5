"""Where setting values come from, and how a problem with one is told.

The environment (``MIA_*``) and ``mia.yaml`` are read into nested mappings that remember which
variable set which key; :mod:`mia_pipeline.settings` hands them to pydantic-settings as layers. Each
validation error then becomes one line naming its origin: the variable that set the value, else the
file and the dotted key (``mia.yaml: ibkr.port: expected an integer, got str ('7497')``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mia_pipeline.small_files import NotASmallFile, read_small_text

Key = tuple[str, ...]


class Conflict(ValueError):
    """A value that is fine alone but wrong with a sibling; blame the first of ``keys`` a user set."""

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys


# variable -> (the key it sets, how its text is read, what to give instead of an empty value)
ENV: dict[str, tuple[Key, str, str]] = {
    "MIA_DATA_DIR": (("data_dir",), "str", "a folder (e.g. MIA_DATA_DIR=./data) or unset it to use ./data"),
    "MIA_TIMEZONE": (("timezone",), "str", "an IANA name (e.g. America/New_York) or unset it"),
    "MIA_SYMBOLS": (("symbols",), "list", "comma-separated symbols, e.g. MIA_SYMBOLS=ES,NQ"),
    "MIA_FIRST_DAY": (("data_collection", "first_day"), "str", "a day (e.g. MIA_FIRST_DAY=2025-01-01) or unset it"),
    "MIA_RETENTION_DAYS": (("data_collection", "storage", "retention_days"), "int", ""),
    "MIA_ARCHIVE_AFTER_DAYS": (("data_collection", "storage", "archive_after_days"), "int", ""),
    "MIA_COMPRESSION": (("data_collection", "storage", "compression"), "str", "a codec or unset it"),
    "MIA_STORAGE_URL": (("data_collection", "storage", "url"), "str",
                        "an s3://bucket/prefix, or unset it to keep the partitions under the data root"),
    "MIA_BACKUP_TARGET": (("backup", "target"), "str",
                          "a folder (e.g. MIA_BACKUP_TARGET=/mnt/backup/mia), an s3://bucket/prefix, or unset it to use "
                          "<data root>/backups"),
    "MIA_BACKUP_KEEP_HOURLY": (("backup", "keep_hourly"), "int", ""),
    "MIA_BACKUP_KEEP_DAILY": (("backup", "keep_daily"), "int", ""),
    "MIA_BACKUP_KEEP_WEEKLY": (("backup", "keep_weekly"), "int", ""),
    "MIA_ALERT_WEBHOOK": (("monitoring", "webhook_url"), "str",
                          "an http(s) URL (e.g. a Slack incoming webhook) or unset it"),
    "MIA_COLLECTION_STOPPED_MINUTES": (("monitoring", "collection_stopped_minutes"), "int", ""),
    "MIA_IBKR_HOST": (("ibkr", "host"), "str", "the TWS/IB Gateway host (e.g. MIA_IBKR_HOST=127.0.0.1) or unset it"),
    "MIA_IBKR_PORT": (("ibkr", "port"), "int", ""),
    "MIA_IBKR_CLIENT_ID": (("ibkr", "client_id"), "int", ""),
}
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


_SECRET_VARIABLES = ("MIA_ALERT_WEBHOOK",)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@")


def _shown(name: str, text: str) -> str:
    """A variable's value as error messages may show it: secrets hidden, ``user:password@`` of a URL masked."""
    if name in _SECRET_VARIABLES:
        return "<hidden>"
    return _USERINFO.sub(r"\1***@", text)


def env_values(env: Mapping[str, str], problems: list[str]) -> dict[Key, tuple[Any, str]]:
    """``MIA_*`` variables as {key: (value, origin label)}; unparsable ones go to ``problems``.
    ``MIA_SOURCES`` (comma separated ``name=on|off``) sets several keys."""
    out: dict[Key, tuple[Any, str]] = {}
    for name, (key, kind, instead) in ENV.items():
        if name not in env:
            continue
        text, label = env[name], f"{name}={_shown(name, env[name])}"
        value: Any = text
        if kind == "int":
            try:
                value = int(text)
            except ValueError:
                problems.append(f"{label}: expected an integer")
                continue
        elif kind == "list":
            value = [s.strip() for s in text.split(",") if s.strip()]
        if not (value if kind == "list" else str(value).strip()):
            problems.append(f"{label}: " + ("names no symbol" if kind == "list" else "is empty") + f"; give {instead}")
            continue
        out[key] = (value, label)
    label = f"MIA_SOURCES={env.get('MIA_SOURCES', '')}"
    for item in filter(None, (s.strip() for s in env.get("MIA_SOURCES", "").split(","))):
        name, sep, flag = (p.strip() for p in item.partition("="))
        if not sep:
            problems.append(f"{label}: expected name=on|off items, got {item!r}")
        elif flag.lower() not in _ON + _OFF:
            problems.append(f"{label}: {name}: expected on/off/true/false, got {flag!r}")
        else:
            out[("data_collection", "sources", name)] = (flag.lower() in _ON, label)
    return out


def nested(values: Mapping[Key, tuple[Any, str]]) -> dict:
    """{("a", "b"): (v, label)} -> {"a": {"b": v}}."""
    tree: dict = {}
    for key, (value, _) in values.items():
        node = tree
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = value
    return tree


MAX_SHOWN = 80  # characters of a value quoted in a message: a 100 kB (or alias-bombed) value is not echoed


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}… ({len(text):,} characters)"


def _settings_loader():
    """PyYAML's safe loader, stricter for a settings file: dates stay text (the settings check them and name
    the key), a key given twice, a key that is not text and an alias (``*name``: the way to a billion-laughs
    expansion) are errors, not silently resolved."""
    import yaml

    class Loader(yaml.SafeLoader):
        yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "an alias (*name) is not allowed in a settings file: "
                                                  "write the value out", self.peek_event().start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: {...}`: merged by PyYAML as usual
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {shown(key)} is not text (quote it, or use a setting's name)",
                        key_node.start_mark)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice in one mapping (keep one)", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def _yaml_problem(exc) -> str:
    """One line for a PyYAML error: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: {what}" + (f" ({context})" if context else "")


def read_file(path: Path, problems: list[str]) -> dict:
    """The mapping of a mia.yaml; a missing, unreadable or malformed file is a problem, and ``{}``."""
    import yaml  # only when there is a file: keeps `mia --help` quick

    if not path.exists():
        problems.append(f"config file {path} does not exist (set MIA_CONFIG or pass an existing path)")
        return {}
    try:
        loaded = yaml.load(read_small_text(path, 1 << 20, "a mia.yaml holds settings"), Loader=_settings_loader())  # noqa: S506 - a SafeLoader subclass
    except NotASmallFile as exc:
        problems.append(str(exc))
        return {}
    except UnicodeDecodeError as exc:  # before ValueError: it is one
        problems.append(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8")
        return {}
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML{_yaml_problem(exc)}")
        return {}
    except ValueError as exc:
        problems.append(f"{path}: not valid YAML: {str(exc).splitlines()[0]}")
        return {}
    except (KeyError, AttributeError, TypeError, OverflowError) as exc:  # an explicit tag on a value it cannot be
        problems.append(f"{path}: not valid YAML: a tagged value it cannot build ({type(exc).__name__}: "
                        f"{str(exc)[:80]})")
        return {}
    except RecursionError:
        problems.append(f"{path}: nested too deeply to be a settings file (its sections are at most three levels deep)")
        return {}
    except OSError as exc:
        problems.append(f"config file {path} cannot be read: {exc.strerror or exc}")
        return {}
    if loaded is None:  # an empty file (or only comments): no settings
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"{path}: expected a mapping at the top level (key: value lines), got "
                        f"{type(loaded).__name__} {shown(loaded)}")
        return {}
    return loaded


# --- validation errors -> one line each -----------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "bool_type": "bool (true/false)", "bool_parsing": "bool (true/false)",
    "string_type": "str", "path_type": "a path string",
    "tuple_type": "a list of strings", "list_type": "a list of strings",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
}


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))


def _in_file(tree: Any, key: tuple) -> bool:
    for part in key:
        if isinstance(part, int):
            return True  # an item of a list the file set
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _section(root: Any, loc: tuple) -> Any:
    for part in loc:
        root = root.model_fields[part].annotation
    return root


def _problem(root: Any, err: Mapping[str, Any]) -> str:
    kind, value, ctx, loc = err["type"], err.get("input"), err.get("ctx") or {}, tuple(err["loc"])
    if kind == "extra_forbidden":
        where = f"{_dotted(loc[:-1])}." if loc[:-1] else ""
        valid = ", ".join(sorted(_section(root, loc[:-1]).model_fields))
        return f"unknown setting {where}{loc[-1]!r}; valid keys here: {valid}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {type(value).__name__} ({shown(value)})"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"])
        return f"{shown(value)} is not one of {', '.join(choices)}"
    if kind in ("greater_than_equal", "less_than_equal"):  # Field(ge=, le=, description="what it is")
        info = _section(root, loc[:-1]).model_fields[loc[-1]]
        lo, hi = (next((getattr(m, a) for m in info.metadata if hasattr(m, a)), None) for a in ("ge", "le"))
        return f"{value} is not {info.description} " + (f"from {lo} to {hi}" if hi is not None else f"(at least {lo})")
    if kind == "value_error":
        return str(ctx["error"])
    return err["msg"]


def describe(root: Any, err: Mapping[str, Any], labels: Mapping[Key, str], file_raw: dict,
             file_label: str | None) -> str:
    """``<origin>: <problem>`` for one error of validating ``root``: the variable that set the value,
    else the file and key."""
    loc = tuple(err["loc"])
    error = (err.get("ctx") or {}).get("error")
    problem = _problem(root, err)
    # a conflict (raised by its section) names both keys: blame the first one that was set
    blamed = [loc + (k,) for k in error.keys] if isinstance(error, Conflict) else [loc]
    in_file = problem if err["type"] == "extra_forbidden" else f"{_dotted(loc)}: {problem}"
    for key in blamed:
        for n in range(len(key), 0, -1):
            if key[:n] in labels:
                return f"{labels[key[:n]]}: {problem}"
        if file_label and _in_file(file_raw, key):
            return f"{file_label}: {in_file}"
    return in_file
