"""carbon.conf, parsed once into a frozen :class:`CarbonConfig`.

The file keeps Graphite's own names and grammar: INI sections ``[cache]`` and
``[cache:<instance>]`` (which inherits ``[cache]``), ``KEY = value`` lines,
carbon's booleans and ``inf`` for unbounded limits. Every key carbon 1.1.10
knows is accepted; the ones Carbyne acts on are typed fields of
:class:`CarbonConfig`, the rest are logged as ignored. Unknown keys warn with
file and line; bad values raise :class:`ConfigError` naming file, line, key and
reason. Library code never exits: the ``serve`` command turns errors into a
message and an exit status.
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WRITE_STRATEGIES = ("sorted", "max", "naive", "timesorted")
LOW_WATERMARK_RATIO = 0.95
CACHE_SECTION = "cache"
RENDER_SECTION = "render"
# Sections carbon defines for its other daemons; Carbyne reads none of them.
OTHER_CARBON_SECTIONS = ("relay", "aggregator")

_TRUE_WORDS = frozenset({"1", "yes", "true", "on"})
_FALSE_WORDS = frozenset({"0", "no", "false", "off"})


class ConfigError(ValueError):
    """A carbon.conf value Carbyne cannot use; the message names file, line and key."""


@dataclass(frozen=True)
class CarbonConfig:
    """Everything the ingest daemon reads from carbon.conf (snake_case inside)."""

    storage_dir: Path = Path("data")
    local_data_dir: Path = Path("data/whisper")
    conf_dir: Path = Path("conf")
    log_dir: Path = Path("data/log")
    whitelist_path: Path = Path("conf/whitelist.conf")
    blacklist_path: Path = Path("conf/blacklist.conf")
    instance: str | None = None

    line_receiver_interface: str = "0.0.0.0"
    line_receiver_port: int = 2003
    enable_udp_listener: bool = False
    udp_receiver_interface: str = "0.0.0.0"
    udp_receiver_port: int = 2003
    pickle_receiver_interface: str = "0.0.0.0"
    pickle_receiver_port: int = 2004
    pickle_receiver_max_length: int = 2**20
    cache_query_interface: str = "0.0.0.0"
    cache_query_port: int = 7002
    max_receiver_connections: float = math.inf
    metric_client_idle_timeout: float | None = None

    max_cache_size: float = math.inf
    cache_size_low_watermark: float = math.inf
    use_flow_control: bool = True
    cache_write_strategy: str = "sorted"
    min_timestamp_resolution: int = 0
    min_timestamp_lag: int = 0

    max_updates_per_second: float = 500.0
    max_updates_per_second_on_shutdown: float | None = None
    max_creates_per_minute: float = math.inf
    whisper_sparse_create: bool = False
    whisper_fallocate_create: bool = False
    whisper_autoflush: bool = False

    use_whitelist: bool = False
    carbon_metric_prefix: str = "carbon"
    carbon_metric_interval: float = 60.0

    # carbon's code defaults these to True; its shipped example (and Carbyne)
    # to False, since one log line per update drowns everything else.
    log_updates: bool = False
    log_creates: bool = False
    log_cache_hits: bool = False
    log_cache_queue_sorts: bool = False
    log_listener_conn_success: bool = True
    log_listener_conn_lost: bool = False

    http_interface: str = "0.0.0.0"
    http_port: int = 8080


# --- value readers: each takes the raw text and returns the typed value or
# raises ValueError with a reason phrased for the user.


def read_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("expected a boolean (True/False, yes/no, on/off, 1/0)")


def read_limit(text: str) -> float:
    """A non-negative number or ``inf`` (carbon's way of saying unlimited)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number or inf") from None
    if math.isnan(value) or value < 0:
        raise ValueError("expected a number >= 0 or inf")
    return value


def read_positive_limit(text: str) -> float:
    value = read_limit(text)
    if value == 0:
        raise ValueError("expected a number > 0 or inf")
    return value


def read_int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected an integer") from None
    if not value.is_integer() or value < 0:
        raise ValueError("expected a whole number >= 0")
    return int(value)


def read_positive_int(text: str) -> int:
    value = read_int(text)
    if value < 1:
        raise ValueError("expected a whole number >= 1")
    return value


def read_connection_limit(text: str) -> float:
    """A whole number of connections >= 1, or inf."""
    value = read_positive_limit(text)
    if not math.isinf(value) and (not value.is_integer() or value < 1):
        raise ValueError("expected a whole number >= 1 or inf")
    return value


def read_port(text: str) -> int:
    value = read_int(text)
    if value > 65535:
        raise ValueError("expected a port 0..65535 (0 disables the listener)")
    return value


def read_seconds(text: str) -> float:
    value = read_limit(text)
    if math.isinf(value):
        raise ValueError("expected a finite number of seconds")
    return value


def read_optional_seconds(text: str) -> float | None:
    """Seconds, or None/0/empty for "never" (carbon's None)."""
    if text.strip() in ("", "None"):
        return None
    return read_seconds(text) or None


def read_optional_rate(text: str) -> float | None:
    if text.strip() in ("", "None"):
        return None
    return read_positive_limit(text)


def read_interface(text: str) -> str:
    value = text.strip()
    if not value or any(ch.isspace() for ch in value):
        raise ValueError("expected an interface address such as 0.0.0.0 or 127.0.0.1")
    return value


def read_text(text: str) -> str:
    return text.strip()


def read_metric_prefix(text: str) -> str:
    value = text.strip()
    if not value or any(ch.isspace() for ch in value) or value.startswith(".") or ".." in value:
        raise ValueError("expected a dotted metric prefix such as carbon")
    return value.rstrip(".")


def read_strategy(text: str) -> str:
    value = text.strip()
    if value not in WRITE_STRATEGIES:
        raise ValueError(f"expected one of {', '.join(WRITE_STRATEGIES)}")
    return value


def read_path(text: str) -> Path:
    value = text.strip()
    if not value:
        raise ValueError("expected a directory path")
    return Path(os.path.normpath(os.path.expanduser(value)))


def read_database(text: str) -> str:
    value = text.strip()
    if value != "whisper":
        raise ValueError("Carbyne stores whisper files only (DATABASE = whisper)")
    return value


def read_anything(text: str) -> str:
    return text


# KEY -> (CarbonConfig field or None when Carbyne accepts but does not act on it, reader)
_ACTED_ON: dict[str, tuple[str, Callable[[str], Any]]] = {
    "STORAGE_DIR": ("storage_dir", read_path),
    "LOCAL_DATA_DIR": ("local_data_dir", read_path),
    "CONF_DIR": ("conf_dir", read_path),
    "LOG_DIR": ("log_dir", read_path),
    "LINE_RECEIVER_INTERFACE": ("line_receiver_interface", read_interface),
    "LINE_RECEIVER_PORT": ("line_receiver_port", read_port),
    "ENABLE_UDP_LISTENER": ("enable_udp_listener", read_bool),
    "UDP_RECEIVER_INTERFACE": ("udp_receiver_interface", read_interface),
    "UDP_RECEIVER_PORT": ("udp_receiver_port", read_port),
    "PICKLE_RECEIVER_INTERFACE": ("pickle_receiver_interface", read_interface),
    "PICKLE_RECEIVER_PORT": ("pickle_receiver_port", read_port),
    "PICKLE_RECEIVER_MAX_LENGTH": ("pickle_receiver_max_length", read_positive_int),
    "CACHE_QUERY_INTERFACE": ("cache_query_interface", read_interface),
    "CACHE_QUERY_PORT": ("cache_query_port", read_port),
    "MAX_RECEIVER_CONNECTIONS": ("max_receiver_connections", read_connection_limit),
    "METRIC_CLIENT_IDLE_TIMEOUT": ("metric_client_idle_timeout", read_optional_seconds),
    "MAX_CACHE_SIZE": ("max_cache_size", read_positive_limit),
    "CACHE_SIZE_LOW_WATERMARK": ("cache_size_low_watermark", read_limit),
    "USE_FLOW_CONTROL": ("use_flow_control", read_bool),
    "CACHE_WRITE_STRATEGY": ("cache_write_strategy", read_strategy),
    "MIN_TIMESTAMP_RESOLUTION": ("min_timestamp_resolution", read_int),
    "MIN_TIMESTAMP_LAG": ("min_timestamp_lag", read_int),
    "MAX_UPDATES_PER_SECOND": ("max_updates_per_second", read_positive_limit),
    "MAX_UPDATES_PER_SECOND_ON_SHUTDOWN": (
        "max_updates_per_second_on_shutdown",
        read_optional_rate,
    ),
    "MAX_CREATES_PER_MINUTE": ("max_creates_per_minute", read_limit),
    "WHISPER_SPARSE_CREATE": ("whisper_sparse_create", read_bool),
    "WHISPER_FALLOCATE_CREATE": ("whisper_fallocate_create", read_bool),
    "WHISPER_AUTOFLUSH": ("whisper_autoflush", read_bool),
    "USE_WHITELIST": ("use_whitelist", read_bool),
    "CARBON_METRIC_PREFIX": ("carbon_metric_prefix", read_metric_prefix),
    "CARBON_METRIC_INTERVAL": ("carbon_metric_interval", read_seconds),
    "LOG_UPDATES": ("log_updates", read_bool),
    "LOG_CREATES": ("log_creates", read_bool),
    "LOG_CACHE_HITS": ("log_cache_hits", read_bool),
    "LOG_CACHE_QUEUE_SORTS": ("log_cache_queue_sorts", read_bool),
    "LOG_LISTENER_CONN_SUCCESS": ("log_listener_conn_success", read_bool),
    "LOG_LISTENER_CONN_LOST": ("log_listener_conn_lost", read_bool),
}

# Keys carbon 1.1.10 knows that Carbyne accepts without acting on them, each
# with the reader that still validates its value (so typos in values surface).
_ACCEPTED_IGNORED: dict[str, Callable[[str], Any]] = {
    "DATABASE": read_database,
    "USER": read_anything,
    "PID_DIR": read_anything,
    "WHITELISTS_DIR": read_anything,
    "ENABLE_LOGROTATION": read_bool,
    "USE_INSECURE_UNPICKLER": read_bool,
    "WHISPER_LOCK_WRITES": read_bool,
    "WHISPER_FADVISE_RANDOM": read_bool,
    "CERES_MAX_SLICE_GAP": read_anything,
    "CERES_NODE_CACHING_BEHAVIOR": read_anything,
    "CERES_SLICE_CACHING_BEHAVIOR": read_anything,
    "CERES_LOCK_WRITES": read_anything,
    "PROTOBUF_RECEIVER_INTERFACE": read_anything,
    "PROTOBUF_RECEIVER_PORT": read_anything,
    "ENABLE_AMQP": read_bool,
    "AMQP_VERBOSE": read_anything,
    "AMQP_HOST": read_anything,
    "AMQP_PORT": read_anything,
    "AMQP_VHOST": read_anything,
    "AMQP_USER": read_anything,
    "AMQP_PASSWORD": read_anything,
    "AMQP_EXCHANGE": read_anything,
    "AMQP_METRIC_NAME_IN_BODY": read_anything,
    "AMQP_SPEC": read_anything,
    "BIND_PATTERNS": read_anything,
    "ENABLE_MANHOLE": read_bool,
    "MANHOLE_INTERFACE": read_anything,
    "MANHOLE_PORT": read_anything,
    "MANHOLE_USER": read_anything,
    "MANHOLE_PUBLIC_KEY": read_anything,
    "MANHOLE_HOST_KEY_DIR": read_anything,
    "GRAPHITE_URL": read_anything,
    "ENABLE_TAGS": read_bool,
    "SKIP_TAGS_FOR_NONTAGGED": read_bool,
    "TAG_UPDATE_INTERVAL": read_anything,
    "TAG_BATCH_SIZE": read_anything,
    "TAG_QUEUE_SIZE": read_anything,
    "TAG_HASH_FILENAMES": read_bool,
    "TAG_RELAY_NORMALIZED": read_anything,
    "TCP_KEEPALIVE": read_bool,
    "TCP_KEEPIDLE": read_anything,
    "TCP_KEEPINTVL": read_anything,
    "TCP_KEEPCNT": read_anything,
    "LOG_AGGREGATOR_MISSES": read_anything,
    "RAVEN_DSN": read_anything,
    "CACHE_METRIC_NAMES_MAX": read_anything,
    "CACHE_METRIC_NAMES_TTL": read_anything,
    # relay / aggregator settings that carbon also reads when they sit in [cache]
    "MAX_DATAPOINTS_PER_MESSAGE": read_anything,
    "MAX_AGGREGATION_INTERVALS": read_anything,
    "FORWARD_ALL": read_anything,
    "MAX_QUEUE_SIZE": read_anything,
    "QUEUE_LOW_WATERMARK_PCT": read_anything,
    "TIME_TO_DEFER_SENDING": read_anything,
    "RELAY_METHOD": read_anything,
    "DYNAMIC_ROUTER": read_anything,
    "DYNAMIC_ROUTER_MAX_RETRIES": read_anything,
    "ROUTER_HASH_TYPE": read_anything,
    "REPLICATION_FACTOR": read_anything,
    "DIVERSE_REPLICAS": read_anything,
    "DESTINATIONS": read_anything,
    "DESTINATION_PROTOCOL": read_anything,
    "DESTINATION_TRANSPORT": read_anything,
    "DESTINATION_SSL_CA": read_anything,
    "DESTINATION_POOL_REPLICAS": read_anything,
    "USE_RATIO_RESET": read_anything,
    "MIN_RESET_STAT_FLOW": read_anything,
    "MIN_RESET_RATIO": read_anything,
    "MIN_RESET_INTERVAL": read_anything,
    "AGGREGATION_RULES": read_anything,
    "REWRITE_RULES": read_anything,
    "RELAY_RULES": read_anything,
    "WRITE_BACK_FREQUENCY": read_anything,
}

_RENDER_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "HTTP_INTERFACE": ("http_interface", read_interface),
    "HTTP_PORT": ("http_port", read_port),
}


@dataclass(frozen=True)
class IniEntry:
    """One ``key = value`` line, remembered with where it came from."""

    key: str
    value: str
    line: int


_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
_ENTRY_RE = re.compile(r"^(?P<key>[^=:\s][^=:]*?)\s*[=:]\s?(?P<value>.*)$")
_INTERPOLATION_RE = re.compile(r"%\((?P<name>[^)]+)\)s|%%")


def read_ini(path: Path) -> dict[str, list[IniEntry]]:
    """Parse INI text the way Python's ConfigParser reads carbon.conf, keeping line numbers.

    Comment lines start with ``#`` or ``;``; an indented line continues the
    previous value; keys are case-insensitive; a key repeated in one section
    is an error, as with ConfigParser's strict mode.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config={str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config={str(path)!r}: not UTF-8 text ({exc})") from exc

    sections: dict[str, list[IniEntry]] = {}
    current: list[IniEntry] | None = None
    seen_keys: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if raw[0].isspace() and current:
            last = current[-1]
            current[-1] = IniEntry(last.key, f"{last.value}\n{stripped}", last.line)
            continue
        header = _SECTION_RE.match(stripped)
        if header:
            name = header.group("name").strip()
            if name in sections:
                raise ConfigError(
                    f"cannot read section=[{name}] at {path}:{number}: section appears twice"
                )
            current = sections[name] = []
            seen_keys = set()
            continue
        entry = _ENTRY_RE.match(stripped)
        if entry is None:
            raise ConfigError(
                f"cannot read line={stripped[:80]!r} at {path}:{number}: expected KEY = value"
            )
        if current is None:
            raise ConfigError(
                f"cannot read line={stripped[:80]!r} at {path}:{number}: "
                "setting appears before any [section]"
            )
        key = entry.group("key").strip().upper()
        if key in seen_keys:
            raise ConfigError(f"cannot read {key} at {path}:{number}: key repeated in its section")
        seen_keys.add(key)
        current.append(IniEntry(key, entry.group("value").strip(), number))
    return sections


def _interpolate(entry: IniEntry, values: Mapping[str, str], path: Path, depth: int = 0) -> str:
    """Expand ConfigParser's ``%(KEY)s`` references (``%%`` is a literal ``%``)."""

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group("name").upper()
        if name not in values:
            raise ConfigError(
                f"cannot read {entry.key}={entry.value!r} at {path}:{entry.line}: "
                f"%({match.group('name')})s names no setting in this section"
            )
        if depth > 10:
            raise ConfigError(
                f"cannot read {entry.key}={entry.value!r} at {path}:{entry.line}: "
                "interpolation nests too deeply"
            )
        return _interpolate(IniEntry(name, values[name], entry.line), values, path, depth + 1)

    return _INTERPOLATION_RE.sub(expand, entry.value)


def package_conf_dir() -> Path | None:
    """The ``conf/`` folder shipped beside the packages (storage-schemas and friends).

    Found relative to this file so it works from a checkout or an editable
    install; None when the installation carries no conf folder, in which case
    the storage rules fall back to carbon's built-in defaults.
    """
    candidate = Path(__file__).resolve().parent.parent / "conf"
    return candidate if candidate.is_dir() else None


def _base_values(
    config_path: Path | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Directory defaults before the file is read, following carbon's rules.

    Carbon: STORAGE_DIR from $GRAPHITE_STORAGE_DIR, CONF_DIR from
    $GRAPHITE_CONF_DIR or the folder holding the given carbon.conf. Without
    either, Carbyne keeps data under ./data and uses its shipped conf/.
    """
    storage = environ.get("GRAPHITE_STORAGE_DIR")
    conf = environ.get("GRAPHITE_CONF_DIR")
    values: dict[str, Any] = {"storage_dir": Path(storage) if storage else Path("data")}
    if config_path is not None:
        values["conf_dir"] = config_path.parent
    elif conf:
        values["conf_dir"] = Path(conf)
    else:
        values["conf_dir"] = package_conf_dir() or values["storage_dir"] / "conf"
    return values


def _apply_section(
    entries: list[IniEntry],
    values: dict[str, Any],
    path: Path,
    table: Mapping[str, tuple[str, Callable[[str], Any]]],
    ignored: Mapping[str, Callable[[str], Any]],
    raw_values: Mapping[str, str],
) -> None:
    for entry in entries:
        text = _interpolate(entry, raw_values, path)
        known = table.get(entry.key)
        reader = known[1] if known else ignored.get(entry.key)
        if reader is None:
            log.warning(
                "%s:%d: unknown setting %s ignored (not a carbon.conf key)",
                path, entry.line, entry.key,
            )
            continue
        try:
            value = reader(text)
        except ValueError as exc:
            raise ConfigError(f"cannot read {entry.key}={text!r} at {path}:{entry.line}: {exc}") from None
        if known:
            values[known[0]] = value
        else:
            log.info("%s:%d: %s is a carbon setting Carbyne ignores", path, entry.line, entry.key)


def load_config(
    path: str | os.PathLike[str] | None = None,
    instance: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> CarbonConfig:
    """Read carbon.conf (``[cache]``, then ``[cache:<instance>]``) into a CarbonConfig.

    Without a path the defaults apply: data under ./data, Carbyne's conf/.
    """
    env = os.environ if environ is None else environ
    config_path = Path(path) if path is not None else None
    values = _base_values(config_path, env)
    explicit: set[str] = set()
    if config_path is not None:
        sections = read_ini(config_path)
        wanted = [CACHE_SECTION] + ([f"{CACHE_SECTION}:{instance}"] if instance else [])
        raw: dict[str, str] = {}
        for name in wanted:
            entries = sections.get(name, [])
            raw.update({e.key: e.value for e in entries})
            _apply_section(entries, values, config_path, _ACTED_ON, _ACCEPTED_IGNORED, raw)
            explicit.update(e.key for e in entries)
        render_entries = sections.get(RENDER_SECTION, [])
        _apply_section(
            render_entries, values, config_path, _RENDER_KEYS, {},
            {e.key: e.value for e in render_entries},
        )
        for name in sections:
            base = name.split(":", 1)[0]
            if base not in (CACHE_SECTION, RENDER_SECTION, *OTHER_CARBON_SECTIONS):
                log.warning("%s: unknown section [%s] ignored", config_path, name)
    return _finish(values, explicit, instance)


def _finish(values: dict[str, Any], explicit: set[str], instance: str | None) -> CarbonConfig:
    """Derive the settings carbon computes from others once the file is read."""
    storage = values["storage_dir"]
    values.setdefault("local_data_dir", storage / "whisper")
    program = "carbon-cache" + (f"-{instance}" if instance else "")
    values.setdefault("log_dir", storage / "log" / program)
    values["whitelist_path"] = values["conf_dir"] / "whitelist.conf"
    values["blacklist_path"] = values["conf_dir"] / "blacklist.conf"
    values["instance"] = instance
    if "CACHE_SIZE_LOW_WATERMARK" not in explicit:
        values["cache_size_low_watermark"] = values.get("max_cache_size", math.inf) * LOW_WATERMARK_RATIO
    return CarbonConfig(**values)


def apply_overrides(
    config: CarbonConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    bind: str | None = None,
    line_port: int | None = None,
    udp_port: int | None = None,
    pickle_port: int | None = None,
    cache_query_port: int | None = None,
) -> CarbonConfig:
    """Command-line flags on top of the file: each given flag wins over carbon.conf.

    ``data_dir`` moves STORAGE_DIR and the whisper folder under it; ``bind``
    sets every listener's interface; a UDP port enables the UDP listener.
    """
    changes: dict[str, Any] = {}
    if data_dir is not None:
        storage = Path(os.path.normpath(os.path.expanduser(os.fspath(data_dir))))
        changes.update(storage_dir=storage, local_data_dir=storage / "whisper")
    if bind is not None:
        address = read_interface(bind)
        changes.update(
            line_receiver_interface=address,
            udp_receiver_interface=address,
            pickle_receiver_interface=address,
            cache_query_interface=address,
        )
    ports = {
        "line_receiver_port": line_port,
        "udp_receiver_port": udp_port,
        "pickle_receiver_port": pickle_port,
        "cache_query_port": cache_query_port,
    }
    for field, port in ports.items():
        if port is not None:
            if not 0 <= port <= 65535:
                raise ConfigError(f"cannot use {field}={port}: expected a port 0..65535")
            changes[field] = port
    if udp_port:
        changes["enable_udp_listener"] = True
    return replace(config, **changes)
