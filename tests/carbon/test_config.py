"""carbon.conf parsing: carbon's keys, types, sections and error reporting."""
import logging
import math
from pathlib import Path

import pytest

from carbon.config import (
    CarbonConfig,
    ConfigError,
    apply_overrides,
    load_config,
    package_conf_dir,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text, name="carbon.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_a_file_keep_data_under_dot_data():
    config = load_config(environ={})
    assert config.storage_dir == Path("data")
    assert config.local_data_dir == Path("data/whisper")
    assert config.line_receiver_port == 2003
    assert config.pickle_receiver_port == 2004
    assert config.cache_query_port == 7002
    assert config.udp_receiver_port == 2003
    assert config.enable_udp_listener is False
    assert config.max_cache_size == math.inf
    assert config.max_creates_per_minute == math.inf
    assert config.max_updates_per_second == 500
    assert config.cache_write_strategy == "sorted"
    assert config.pickle_receiver_max_length == 2**20
    assert config.carbon_metric_prefix == "carbon"
    assert config.carbon_metric_interval == 60


def test_default_conf_dir_is_the_shipped_conf_folder():
    config = load_config(environ={})
    assert package_conf_dir() == REPO / "conf"
    assert config.conf_dir == REPO / "conf"
    assert config.whitelist_path == REPO / "conf" / "whitelist.conf"


def test_graphite_environment_variables_set_the_directories(tmp_path):
    config = load_config(
        environ={"GRAPHITE_STORAGE_DIR": str(tmp_path / "st"), "GRAPHITE_CONF_DIR": "/etc/carbon"}
    )
    assert config.storage_dir == tmp_path / "st"
    assert config.local_data_dir == tmp_path / "st" / "whisper"
    assert config.conf_dir == Path("/etc/carbon")


def test_cache_section_values_are_typed(tmp_path):
    path = write(
        tmp_path,
        """
[cache]
# a comment
; another comment
STORAGE_DIR = /srv/graphite
MAX_CACHE_SIZE = 1000
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = 50
ENABLE_UDP_LISTENER = yes
USE_FLOW_CONTROL = False
WHISPER_FALLOCATE_CREATE = TRUE
WHISPER_SPARSE_CREATE = 1
CACHE_WRITE_STRATEGY = timesorted
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = 2103
CARBON_METRIC_PREFIX = stats.carbon
CARBON_METRIC_INTERVAL = 10
MIN_TIMESTAMP_RESOLUTION = 10
USER =
""",
    )
    config = load_config(path, environ={})
    assert config.storage_dir == Path("/srv/graphite")
    assert config.local_data_dir == Path("/srv/graphite/whisper")
    assert config.conf_dir == tmp_path  # carbon: the folder holding carbon.conf
    assert config.max_cache_size == 1000
    assert config.cache_size_low_watermark == 950
    assert config.max_updates_per_second == math.inf
    assert config.max_creates_per_minute == 50
    assert config.enable_udp_listener is True
    assert config.use_flow_control is False
    assert config.whisper_fallocate_create is True
    assert config.whisper_sparse_create is True
    assert config.cache_write_strategy == "timesorted"
    assert config.line_receiver_interface == "127.0.0.1"
    assert config.line_receiver_port == 2103
    assert config.carbon_metric_prefix == "stats.carbon"
    assert config.carbon_metric_interval == 10
    assert config.min_timestamp_resolution == 10


def test_instance_section_inherits_cache(tmp_path):
    path = write(
        tmp_path,
        "[cache]\nLINE_RECEIVER_PORT = 2003\nMAX_CACHE_SIZE = 10\n"
        "[cache:b]\nLINE_RECEIVER_PORT = 2103\n",
    )
    plain = load_config(path, environ={})
    b = load_config(path, instance="b", environ={})
    assert plain.line_receiver_port == 2003
    assert b.line_receiver_port == 2103
    assert b.max_cache_size == 10
    assert b.instance == "b"


def test_the_shipped_example_parses_and_warns_about_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="carbon.config")
    config = load_config(REPO / "conf" / "carbon.conf.example", environ={})
    assert config.line_receiver_port == 2003
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_carbon_keys_carbyne_does_not_use_are_accepted(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="carbon.config")
    path = write(
        tmp_path,
        "[cache]\nENABLE_MANHOLE = False\nTAG_HASH_FILENAMES = True\nGRAPHITE_URL = http://x\n"
        "DATABASE = whisper\n[relay]\nRELAY_METHOD = rules\nWHATEVER = 1\n[aggregator]\nX = 1\n",
    )
    load_config(path, environ={})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("ENABLE_MANHOLE" in r.getMessage() for r in caplog.records)


def test_unknown_key_warns_with_file_and_line(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="carbon.config")
    path = write(tmp_path, "[cache]\nLINE_RECEIVER_PORT = 2003\nNOT_A_KEY = 1\n")
    load_config(path, environ={})
    (record,) = caplog.records
    assert f"{path}:3" in record.getMessage()
    assert "NOT_A_KEY" in record.getMessage()


def test_unknown_section_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="carbon.config")
    path = write(tmp_path, "[cache]\n[cahce]\nX = 1\n")
    load_config(path, environ={})
    assert any("[cahce]" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("MAX_CACHE_SIZE = lots", "number"),
        ("MAX_CACHE_SIZE = -1", ">= 0"),
        ("LINE_RECEIVER_PORT = 70000", "port"),
        ("LINE_RECEIVER_PORT = 20.5", "whole number"),
        ("USE_FLOW_CONTROL = maybe", "boolean"),
        ("CACHE_WRITE_STRATEGY = random", "sorted"),
        ("DATABASE = ceres", "whisper"),
        ("MAX_UPDATES_PER_SECOND = 0", "> 0"),
        ("CARBON_METRIC_PREFIX = a..b", "prefix"),
        ("LOCAL_DATA_DIR = %(NOPE)s/x", "NOPE"),
        ("PICKLE_RECEIVER_MAX_LENGTH = 0", ">= 1"),
        ("MAX_RECEIVER_CONNECTIONS = 0.5", ">= 1"),
        ("METRIC_CLIENT_IDLE_TIMEOUT = inf", "finite"),
    ],
)
def test_bad_values_name_file_line_key_and_reason(tmp_path, line, reason):
    path = write(tmp_path, f"[cache]\n\n{line}\n")
    key = line.split("=")[0].strip()
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert message.startswith(f"cannot read {key}=")
    assert f"{path}:3" in message
    assert reason in message


def test_a_repeated_key_is_an_error(tmp_path):
    path = write(tmp_path, "[cache]\nLINE_RECEIVER_PORT = 1\nline_receiver_port = 2\n")
    with pytest.raises(ConfigError, match=r"carbon.conf:3.*repeated"):
        load_config(path, environ={})


def test_a_line_outside_any_section_is_an_error(tmp_path):
    path = write(tmp_path, "LINE_RECEIVER_PORT = 1\n")
    with pytest.raises(ConfigError, match="before any"):
        load_config(path, environ={})


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config="):
        load_config(tmp_path / "nope.conf", environ={})


def test_interpolation_and_continuation_lines(tmp_path):
    path = write(
        tmp_path,
        "[cache]\nSTORAGE_DIR = /srv/g\nLOCAL_DATA_DIR = %(STORAGE_DIR)s/wsp\n"
        "CARBON_METRIC_PREFIX = carbon\n",
    )
    config = load_config(path, environ={})
    assert config.local_data_dir == Path("/srv/g/wsp")


def test_limits_and_timeouts(tmp_path):
    path = write(tmp_path, "[cache]\nMAX_RECEIVER_CONNECTIONS = 100\nMETRIC_CLIENT_IDLE_TIMEOUT = 0\n"
                 "PICKLE_RECEIVER_MAX_LENGTH = 4096\n")
    config = load_config(path, environ={})
    assert config.max_receiver_connections == 100
    assert config.metric_client_idle_timeout is None  # 0 means never, as None does
    assert config.pickle_receiver_max_length == 4096
    path = write(tmp_path, "[cache]\nMETRIC_CLIENT_IDLE_TIMEOUT = 30\nMAX_RECEIVER_CONNECTIONS = inf\n")
    config = load_config(path, environ={})
    assert config.metric_client_idle_timeout == 30 and config.max_receiver_connections == math.inf


def test_render_section_is_accepted(tmp_path):
    path = write(tmp_path, "[cache]\n[render]\nHTTP_PORT = 8081\nHTTP_INTERFACE = 127.0.0.1\n")
    config = load_config(path, environ={})
    assert config.http_port == 8081
    assert config.http_interface == "127.0.0.1"


def test_explicit_low_watermark_is_kept(tmp_path):
    path = write(tmp_path, "[cache]\nMAX_CACHE_SIZE = 100\nCACHE_SIZE_LOW_WATERMARK = 50\n")
    assert load_config(path, environ={}).cache_size_low_watermark == 50


def test_cli_overrides_apply_on_top(tmp_path):
    base = CarbonConfig()
    config = apply_overrides(
        base, data_dir=tmp_path, bind="127.0.0.1", line_port=0, udp_port=5555,
        pickle_port=2222, cache_query_port=3333,
    )
    assert config.storage_dir == tmp_path
    assert config.local_data_dir == tmp_path / "whisper"
    assert config.line_receiver_interface == "127.0.0.1"
    assert config.cache_query_interface == "127.0.0.1"
    assert config.line_receiver_port == 0
    assert config.udp_receiver_port == 5555
    assert config.enable_udp_listener is True
    assert config.pickle_receiver_port == 2222
    assert config.cache_query_port == 3333
    assert base.line_receiver_port == 2003  # frozen original untouched


def test_cli_override_rejects_a_bad_port():
    with pytest.raises(ConfigError, match="line_receiver_port=70000"):
        apply_overrides(CarbonConfig(), line_port=70000)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        CarbonConfig().line_receiver_port = 1  # type: ignore[misc]
