"""The one reader of the environment: every setting that can change between machines comes from here."""
import ipaddress
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses and CIDR ranges ("10.0.0.5, 10.1.0.0/16, ::1"); empty when unset. An entry that is
    neither stops the start with a message naming the variable and the entry."""
    networks = []
    for entry in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{name} has an entry that is neither an address nor an address range: {entry[:100]!r}. "
                             "Write addresses and ranges such as 10.0.0.5 and 10.1.0.0/16, separated by commas.") from None
    return networks


def var_dir() -> Path:
    """Where the embedded default keeps its database, media, models and Redis files."""
    path = Path(env_str("GARAGE_VAR_DIR", str(BASE_DIR / "var")))
    path.mkdir(parents=True, exist_ok=True)
    return path
