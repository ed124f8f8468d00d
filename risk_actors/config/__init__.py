"""riskd's configuration: one YAML file (``version: 2``), validated into frozen attrs objects.

``load_config(path, registry)`` is the entry point (a version 2 file, or a 1.0 directory migrated
in memory); ``reload`` keeps the running config when the new one is invalid; errors are one
:class:`ConfigError` listing every :class:`Problem` (file, key path, line, value, what is allowed).
"""

from risk_actors.config.load import (dump_yaml, load_config, make_converter, parse_config,
                                     read_1_0_dir, read_document, reload, write_document,
                                     write_migrated)
from risk_actors.config.migrations import (CURRENT_VERSION, SUPPORTED_VERSIONS, MigrationResult,
                                           migrate)
from risk_actors.config.schema import (MODES, AccountConfig, BrokerSection, Config, ConfigError,
                                       DaemonConfig, DailyResetConfig, Problem, RuleConfig,
                                       TimersConfig)

__all__ = [
    "AccountConfig", "BrokerSection", "CURRENT_VERSION", "Config", "ConfigError", "DaemonConfig",
    "DailyResetConfig", "MODES", "MigrationResult", "Problem", "RuleConfig", "SUPPORTED_VERSIONS",
    "TimersConfig", "dump_yaml", "load_config", "make_converter", "migrate", "parse_config",
    "read_1_0_dir", "read_document", "reload", "write_document", "write_migrated",
]
