"""Who the DICOM node is, whom it talks to and whom it lets in: ``dicomnet.json``.

The file lives in the data folder (``XRAYDESK_DATA_DIR`` moves it) and is JSON::

    {
      "ae_title": "XRAYDESK",            # this node's title (calling and called)
      "host": "127.0.0.1",               # address the Storage SCP binds to
      "port": 11112,
      "allowed_ae_titles": ["ORTHANC"],  # calling titles accepted; nothing else is
      "allowed_hosts": ["127.0.0.1", "::1", "10.1.0.0/16"],  # addresses or networks
      "auto_send": "pacs",               # send SR + SC of every received image back there
      "tls": {"cert": "node.pem", "key": "node.key", "ca": "ca.pem"},  # optional
      "idle_timeout_s": 30,              # a silent connection or association is closed
      "max_associations": 16,            # at once; more are refused (local limit)
      "max_object_mb": 256,              # a larger object is refused, never stored
      "nodes": {"pacs": {"ae_title": "ORTHANC", "host": "10.1.2.3", "port": 4242,
                         "tls": false}}
    }

Why deny by default: a Storage SCP writes whatever it is sent to disk and runs a model
on it, so an association is accepted only from a listed calling AE title *and* a listed
address (loopback when none is listed). The titles of configured ``nodes`` count as
allowed, since those are the PACS the user chose to work with. Relative TLS paths are
read from the data folder.

Why the limits: a caller that opens connections and says nothing, or sends an object of
gigabytes, must not lock out the PACS or exhaust the memory (``dicomnet.guard``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from xraydesk import paths
from xraydesk.errors import XRayDeskError

CONFIG_NAME = "dicomnet.json"
DEFAULT_AE_TITLE = "XRAYDESK"
DEFAULT_PORT = 11112
LOOPBACK = ("127.0.0.1", "::1")
DEFAULT_IDLE_TIMEOUT_S = 30.0
DEFAULT_MAX_ASSOCIATIONS = 16
DEFAULT_MAX_OBJECT_MB = 256  # a chest radiograph is 5 to 60 MB uncompressed
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE: 16 chars, no backslash


class ConfigError(XRayDeskError):
    """dicomnet.json or a command-line option does not describe a usable node."""


def config_path() -> Path:
    return paths.data_dir() / CONFIG_NAME


def check_ae_title(title: str) -> str:
    """The title stripped, or ConfigError (DICOM allows 16 printable characters, no '\\')."""
    title = str(title).strip()
    if not _AE_TITLE.match(title):
        raise ConfigError(
            f"{title!r} is not a valid AE title (1 to 16 printable characters, no backslash)"
        )
    return title


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for TLS associations (both ways). ``ca`` set: the peer must present a
    certificate signed by it (mutual TLS)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None


@dataclass(frozen=True)
class RemoteNode:
    """A PACS or modality this node queries, retrieves from or sends results to."""

    name: str
    ae_title: str
    host: str
    port: int
    tls: bool = False

    def describe(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port}{', TLS' if self.tls else ''})"


@dataclass(frozen=True)
class NodeConfig:
    ae_title: str = DEFAULT_AE_TITLE
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allowed_ae_titles: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    auto_send: str | None = None
    tls: TlsFiles | None = None
    nodes: dict[str, RemoteNode] = field(default_factory=dict)
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_associations: int = DEFAULT_MAX_ASSOCIATIONS
    max_object_mb: float = DEFAULT_MAX_OBJECT_MB

    @property
    def max_object_bytes(self) -> int:
        return int(self.max_object_mb * 1024 * 1024)

    # -- who may connect -------------------------------------------------------------------
    @property
    def accepted_ae_titles(self) -> list[str]:
        """Allowed calling titles: the listed ones and those of the configured nodes."""
        titles = [*self.allowed_ae_titles, *(n.ae_title for n in self.nodes.values())]
        return list(dict.fromkeys(titles))

    @property
    def accepted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        hosts = self.allowed_hosts or LOOPBACK
        return [ipaddress.ip_network(h, strict=False) for h in hosts]

    def host_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.accepted_networks)

    def node(self, name: str) -> RemoteNode:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none configured"
            raise ConfigError(
                f"no DICOM node named {name!r} in {config_path()} (known: {known})"
            ) from None

    # -- reading and writing ---------------------------------------------------------------
    def with_node(self, node: RemoteNode) -> NodeConfig:
        return replace(self, nodes={**self.nodes, node.name: node})

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ae_title": self.ae_title,
            "host": self.host,
            "port": self.port,
            "allowed_ae_titles": list(self.allowed_ae_titles),
            "allowed_hosts": list(self.allowed_hosts),
            "auto_send": self.auto_send,
            "idle_timeout_s": self.idle_timeout_s,
            "max_associations": self.max_associations,
            "max_object_mb": self.max_object_mb,
            "nodes": {
                n.name: {k: v for k, v in asdict(n).items() if k != "name"}
                for n in self.nodes.values()
            },
        }
        if self.tls is not None:
            data["tls"] = {k: str(v) if v else None for k, v in asdict(self.tls).items()}
        return data

    def save(self, path: Path | None = None) -> Path:
        """Write the file (0600: it names the hospital's PACS and its addresses)."""
        from xraydesk.dicomnet.instance_files import write_private

        path = path or config_path()
        write_private(path, (json.dumps(self.to_json(), indent=2) + "\n").encode("utf-8"))
        return path


def load_config(path: Path | None = None) -> NodeConfig:
    """The saved configuration, or the defaults when there is no file yet."""
    path = path or config_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NodeConfig()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the DICOM configuration ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the DICOM configuration must be a JSON object")
    return parse_config(raw, path.parent)


def parse_config(raw: dict[str, Any], base: Path) -> NodeConfig:
    try:
        nodes = {
            name: make_node(name, spec["ae_title"], spec["host"], spec["port"], spec.get("tls"))
            for name, spec in (raw.get("nodes") or {}).items()
        }
        tls_raw = raw.get("tls")
        tls = None
        if tls_raw:
            tls = TlsFiles(**{k: _resolve(tls_raw.get(k), base) for k in ("cert", "key", "ca")})
        config = NodeConfig(
            ae_title=check_ae_title(raw.get("ae_title", DEFAULT_AE_TITLE)),
            host=str(raw.get("host", "127.0.0.1")),
            port=check_port(raw.get("port", DEFAULT_PORT)),
            allowed_ae_titles=tuple(check_ae_title(t) for t in raw.get("allowed_ae_titles", [])),
            allowed_hosts=tuple(check_host(h) for h in raw.get("allowed_hosts", [])),
            auto_send=raw.get("auto_send") or None,
            tls=tls,
            nodes=nodes,
            idle_timeout_s=_positive(raw, "idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S),
            max_associations=int(_positive(raw, "max_associations", DEFAULT_MAX_ASSOCIATIONS)),
            max_object_mb=_positive(raw, "max_object_mb", DEFAULT_MAX_OBJECT_MB),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"DICOM configuration: {type(exc).__name__}: {exc}") from exc
    if config.auto_send is not None:
        config.node(config.auto_send)
    return config


def make_node(name: str, ae_title: str, host: str, port: Any, tls: Any = False) -> RemoteNode:
    if not name or not str(name).strip():
        raise ConfigError("a DICOM node needs a name")
    return RemoteNode(
        str(name).strip(),
        check_ae_title(ae_title),
        check_address(host),
        check_port(port),
        bool(tls),
    )


def check_port(port: Any) -> int:
    value = int(port)
    if not 0 <= value <= 65535:
        raise ConfigError(f"{port!r} is not a TCP port")
    return value


# A DNS name: dot-separated labels of letters, digits, hyphens (and the underscores some
# hospital networks use), none starting or ending with a hyphen; 253 characters at most.
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def check_address(host: Any) -> str:
    """A node's address: an IP address or a DNS name. Refused when saved (a typo such as
    "pacs 01" or "10.0.0.5:104"), not first met as "could not be reached"."""
    text = str(host).strip()
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if not _DNS_NAME.match(text):
        raise ConfigError(
            f"{host!r} is not an IP address or a host name (letters, digits, '-' and '.'; "
            "the port is given apart)"
        )
    return text


def check_host(host: str) -> str:
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise ConfigError(f"{host!r} is not an IP address or network (e.g. 10.1.0.0/16)") from None
    return host


def _positive(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"DICOM configuration: {key} must be a positive number, not {value!r}")
    return float(value)


def _resolve(value: Any, base: Path) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
