"""Configuration generator of the orthancteam/orthanc stand-in: writes /tmp/orthanc.json.

Written for the clinicpacs test images from the rules of upstream's configurator (orthanc-server/
orthanc-builder, docker/orthanc/generateConfiguration.py, configurator.py, helpers.py,
plugins-def.json, orthanc-defaults.json, env-var-non-standards.json); no upstream code. The rules kept:

1. Every /etc/orthanc/*.json, then every /run/secrets/*.json, is read after `$VAR`/`${VAR}`/
   `${VAR:-default}`/`${VAR-default}` substitution from the environment and with // and /* */
   comments removed, then merged: sections (objects) merge key by key, a later file overwrites a
   value (with a warning). A file that is not JSON is an error.
2. ORTHANC_JSON (a whole JSON object) and every ORTHANC__SECTION__KEY variable are merged on top:
   each "__"-separated part becomes a JSON key in CamelCase (DICOM_AET -> DicomAet), ORTHANC__POSTGRESQL
   becomes PostgreSQL (a few other names are fixed, see ALIASES); values are parsed as JSON when they
   parse (numbers, booleans, objects), strings otherwise. X_SECRET=file takes the value of X from
   /run/secrets/file; a file /run/secrets/ORTHANC__... sets that setting.
3. Plugins: a plugin is enabled when its section is in the configuration, when its *_PLUGIN_ENABLED
   variable is set to anything but "false", by default (GDCM), or (Python) when "PythonScript" is set;
   its variable set to "false" disables it. Enabled plugins get their defaults (only for keys not set)
   and their .so files are hard-linked (copied across file systems) from
   /usr/share/orthanc/plugins-available into /run/orthanc/plugins when that directory exists, else
   into /usr/share/orthanc/plugins. A failed link is an error.
4. Orthanc defaults that upstream changes are filled in when not set (DEFAULTS: remote access and
   authentication on, storage in /var/lib/orthanc/db, plugins loaded from both directories above).
5. ORTHANC_PASSWORD adds (or replaces) the user "orthanc". With remote access and authentication on
   and no registered user, it stops (Orthanc 1.13.0 would refuse to start).
6. Errors are printed as "ERROR: ..." on stdout and end the script with a non-zero status before
   /tmp/orthanc.json is written; the entrypoint (errexit) then stops. VERBOSE_STARTUP=true prints
   what it does and the generated configuration.

Simplified: only the plugins this image ships are known (PLUGINS); the deprecated pre-2020 variable
names (AC_ALLOW_REMOTE, PG_ENABLED, ...) are not recognised, upstream refuses them since 26.7.0.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import shutil
import sys

AVAILABLE = "/usr/share/orthanc/plugins-available"
ENABLED = "/usr/share/orthanc/plugins"
ENABLED_RUN = "/run/orthanc/plugins"
OUTPUT = "/tmp/orthanc.json"

DEFAULTS = {
    "StorageDirectory": "/var/lib/orthanc/db",
    "RemoteAccessAllowed": True,
    "AuthenticationEnabled": True,
    "HttpsCACertificates": "/etc/ssl/certs/ca-certificates.crt",
    "Plugins": [ENABLED_RUN, ENABLED],
}

# Variable names that do not follow the CamelCase rule (upstream's list, the part that applies here).
ALIASES = {
    "ORTHANC__CASE_SENSITIVE_PN": "CaseSensitivePN",
    "ORTHANC__HTTPS_CA_CERTIFICATES": "HttpsCACertificates",
    "ORTHANC__STORE_MD5_FOR_ATTACHMENTS": "StoreMD5ForAttachments",
    "ORTHANC__POSTGRESQL": "PostgreSQL",
}
SECTION_PREFIXES = {"POSTGRESQL": "PostgreSQL", "MYSQL": "MySQL", "OHIF": "OHIF"}

# The plugins of this image, in upstream's order (the order links are made and errors reported).
# Debian's packages have no ConnectivityChecks, Authorization, OE2, ...; upstream's own Worklists plugin is
# stood in for by Debian's sample (the Dockerfile), under upstream's file name.
# section: the configuration section that enables it (default: its name); variable: the
# *_PLUGIN_ENABLED variable; default_on: enabled unless its variable is "false"; root_setting: a
# top-level setting that enables it too; defaults: filled into its section when enabled.
PLUGINS = {
    "DicomWeb": {
        "variable": "DICOM_WEB_PLUGIN_ENABLED",
        "defaults": {"Enable": True},
        "libs": ["libOrthancDicomWeb.so"],
    },
    "Gdcm": {
        "variable": "GDCM_PLUGIN_ENABLED",
        "default_on": True,
        "defaults": {
            "Throttling": 4,
            # JPEG 2000 only: GDCM decodes these, DCMTK does the rest.
            "RestrictTransferSyntaxes": [
                "1.2.840.10008.1.2.4.90",
                "1.2.840.10008.1.2.4.91",
                "1.2.840.10008.1.2.4.92",
                "1.2.840.10008.1.2.4.93",
            ],
        },
        "libs": ["libOrthancGdcm.so"],
    },
    "PostgreSQL": {
        "variable": "POSTGRESQL_PLUGIN_ENABLED",
        "defaults": {
            "EnableIndex": True,
            "EnableStorage": False,
            "Port": 5432,
            "Host": "HOST MUST BE DEFINED",
            "Database": "postgres",
            "Username": "postgres",
            "Password": "postgres",
            "EnableSsl": False,
            "Lock": False,
        },
        "libs": ["libOrthancPostgreSQLIndex.so", "libOrthancPostgreSQLStorage.so"],
    },
    "Python": {"variable": "PYTHON_PLUGIN_ENABLED", "root_setting": "PythonScript", "libs": ["libOrthancPython.so"]},
    "ServeFolders": {"variable": "SERVE_FOLDERS_PLUGIN_ENABLED", "libs": ["libServeFolders.so"]},
    "Housekeeper": {
        "variable": "HOUSEKEEPER_PLUGIN_ENABLED",
        "defaults": {"Enable": True},
        "libs": ["libHousekeeper.so"],
    },
    "DelayedDeletion": {
        "variable": "DELAYED_DELETION_PLUGIN_ENABLED",
        "defaults": {"Enable": True},
        "libs": ["libDelayedDeletion.so"],
    },
    "MultitenantDicom": {"variable": "MULTITENANT_DICOM_PLUGIN_ENABLED", "libs": ["libMultitenantDicom.so"]},
    "Worklists": {
        "variable": "WORKLISTS_PLUGIN_ENABLED",
        "defaults": {"Enable": True},
        "libs": ["libOrthancWorklists.so"],
    },
}

VERBOSE = os.environ.get("VERBOSE_STARTUP") in ("", "true")
errors = 0


def info(text: str) -> None:
    if VERBOSE:
        print(text, flush=True)


def warning(text: str) -> None:
    print(f"WARNING: {text}", flush=True)


def error(text: str) -> None:
    global errors
    errors += 1
    print(f"ERROR: {text}", flush=True)


_SUBST = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def substitute(text: str) -> str:
    """Shell-like substitution of environment variables; unset ones become empty."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        current = os.environ.get(name)
        op = match.group("op")
        if op == ":-" and not current:
            return match.group("default")
        if op == "-" and current is None:
            return match.group("default")
        return current or ""

    return _SUBST.sub(value, text)


def strip_comments(text: str) -> str:
    """Removes // and /* */ comments outside JSON strings (each comment becomes one space)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Config:
    def __init__(self) -> None:
        self.data: dict = {}
        self.origin: dict[str, str] = {}

    def merge(self, new: dict, source: str, overwrite: bool = True) -> None:
        self._merge(self.data, new, source, overwrite, "")

    def _merge(self, into: dict, new: dict, source: str, overwrite: bool, prefix: str) -> None:
        for key, value in new.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                self._merge(into[key], value, source, overwrite, f"{path}.")
                continue
            if key in into:
                if not overwrite:
                    continue
                before = self.origin.get(path, "an earlier source")
                warning(f"{path} was set by {before}; {source} overwrites it")
            into[key] = value
            self.origin[path] = source


def camel(word: str) -> str:
    return "".join(part[:1] + part[1:].lower() for part in word.split("_") if part)


def json_path(variable: str) -> list[str]:
    if variable in ALIASES:
        return ALIASES[variable].split(".")
    parts = variable[len("ORTHANC__") :].split("__")
    if parts[0] in SECTION_PREFIXES:
        return [SECTION_PREFIXES[parts[0]], *(camel(p) for p in parts[1:])]
    return [camel(p) for p in parts]


def nested(path: list[str], value: object) -> dict:
    result: dict = {path[-1]: value}
    for key in reversed(path[:-1]):
        result = {key: result}
    return result


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_files(config: Config) -> None:
    paths = sorted(glob.glob("/etc/orthanc/*.json")) + sorted(glob.glob("/run/secrets/*.json"))
    for path in paths:
        info(f"reading {path}")
        try:
            with open(path, encoding="utf-8") as handle:
                content = json.loads(strip_comments(substitute(handle.read())))
        except (OSError, ValueError) as exc:
            error(f"cannot read the JSON file '{path}': {exc}")
            continue
        if not isinstance(content, dict):
            error(f"'{path}' does not hold a JSON object")
            continue
        config.merge(content, f"file {path}")


def read_environment(config: Config, enabled: set[str], disabled: set[str], secret_files: dict[str, str]) -> None:
    by_variable = {spec["variable"]: name for name, spec in PLUGINS.items()}
    for key, value in sorted(os.environ.items()):
        if key == "ORTHANC_JSON":
            try:
                content = json.loads(strip_comments(value))
            except ValueError as exc:
                error(f"ORTHANC_JSON is not valid JSON: {exc}")
                continue
            config.merge(content, "ORTHANC_JSON")
        elif key.endswith("_SECRET"):
            secret_files[value] = key[: -len("_SECRET")]
        elif key.startswith("ORTHANC__") or key in ALIASES:
            config.merge(nested(json_path(key), parse_value(value)), f"variable {key}")
        elif key in by_variable:
            (disabled if value == "false" else enabled).add(by_variable[key])


def read_secrets(config: Config, secret_files: dict[str, str]) -> None:
    for path in sorted(glob.glob("/run/secrets/*")):
        if not os.path.isfile(path):
            continue
        name = os.path.basename(path)
        variable = secret_files.get(name, name)
        if not (variable.startswith("ORTHANC__") or variable in ALIASES):
            continue
        with open(path, encoding="utf-8") as handle:
            value = handle.read().rstrip("\n")
        config.merge(nested(json_path(variable), parse_value(value)), f"secret {path}")


def enabled_plugins(config: Config, enabled: set[str], disabled: set[str]) -> list[str]:
    names = []
    for name, spec in PLUGINS.items():
        on = name in enabled or spec.get("section", name) in config.data or spec.get("default_on", False)
        if spec.get("root_setting") in config.data:
            on = True
        if name in disabled:
            on = False
        if on:
            names.append(name)
    return names


def install(lib: str) -> None:
    source = os.path.join(AVAILABLE, lib)
    target_dir = ENABLED_RUN if os.path.isdir(ENABLED_RUN) else ENABLED
    target = os.path.join(target_dir, lib)
    if os.path.isfile(target):  # a restarted container keeps what it linked before
        return
    try:
        try:
            os.link(source, target)
            info(f"linked {source} -> {target}")
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy(source, target)
            info(f"copied {source} -> {target}")
    except OSError as exc:
        error(f"failed to install {lib}: {exc}")


def main() -> int:
    config = Config()
    enabled: set[str] = set()
    disabled: set[str] = set()
    secret_files: dict[str, str] = {}
    read_files(config)
    read_environment(config, enabled, disabled, secret_files)
    read_secrets(config, secret_files)

    config.merge(DEFAULTS, "defaults", overwrite=False)
    for name in enabled_plugins(config, enabled, disabled):
        spec = PLUGINS[name]
        info(f"plugin {name} enabled")
        if "defaults" in spec:
            config.merge({spec.get("section", name): spec["defaults"]}, f"defaults of {name}", overwrite=False)
        for lib in spec["libs"]:
            install(lib)

    data = config.data
    password = os.environ.get("ORTHANC_PASSWORD")
    if password:
        users = data.get("RegisteredUsers") or {}
        users["orthanc"] = password
        data["RegisteredUsers"] = users
    info("generated configuration: " + json.dumps(data, indent=2))
    if errors:
        error("the configuration for Orthanc could not be prepared (see the errors above)")
        return 255
    if (
        data.get("RemoteAccessAllowed", True)
        and data.get("AuthenticationEnabled", True)
        and not data.get("RegisteredUsers")
    ):
        error(
            "authentication and remote access are on but no user is registered: Orthanc 1.13.0 refuses to start. "
            "Set RegisteredUsers, ORTHANC_PASSWORD, or ORTHANC__AUTHENTICATION_ENABLED=false (not recommended)."
        )
        return 253
    with open(OUTPUT, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    info(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
