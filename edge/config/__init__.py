"""Configuration: every ``DOGMON_*`` key declared once (:mod:`.keys`), its value parsers (:mod:`.parse`), loading
from ``device.env`` and the environment (:mod:`.load`) and the generated reference (:mod:`.docs`)."""

from edge.config.keys import DEFAULT_ENV_FILES, KEYS, KEYS_BY_NAME, SCRIPT_VARIABLES, Config, Key, key
from edge.config.load import check_combinations, load_config, read_env_file, unknown_key_warnings
from edge.config.parse import SECRET_KEYS, ConfigError, ConfigErrors, MqttTarget, parse_mqtt_url

__all__ = ["DEFAULT_ENV_FILES", "KEYS", "KEYS_BY_NAME", "SCRIPT_VARIABLES", "SECRET_KEYS", "Config", "ConfigError",
           "ConfigErrors", "Key", "MqttTarget", "check_combinations", "key", "load_config", "parse_mqtt_url",
           "read_env_file", "unknown_key_warnings"]
