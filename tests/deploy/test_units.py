"""deploy.units against systemd itself: `systemd-analyze verify` on the rendered units, the
environment files read back by systemd's own EnvironmentFile= parser, and each service's runtime
started under its unit's sandbox.

The last two need a service manager. This machine's PID 1 is not systemd, so `user_manager`
starts `systemd --user` in a private mount namespace (root and unshare(1) needed; skipped
otherwise) and the tests reach it with `systemd-run --user`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adpulse.errors import ConfigError
from deploy import layout
from deploy.units import env_line, render_env_files, render_units, secrets_by_service
from tests.support.snapshots import check_snapshots

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_HINT = "UPDATE_SNAPSHOTS=1 ./dev test tests/deploy/test_units.py"

PLAIN = {
    "ADPULSE_CLICKHOUSE_URL": "clickhouses://ch-1.adpulse.internal:9440/adpulse",
    "ADPULSE_KAFKA_BOOTSTRAP": "b-1.msk.example:9096,b-2.msk.example:9096",
    "ADPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "ADPULSE_STACK_NAME": "prod",
}
# Fixture values only; each is distinctive so a grep cannot match by accident.
SECRET = {
    "consumer": {
        "ADPULSE_KAFKA_SASL_PASSWORD": "fixture-kafka-Zq8v#2 $HOME",
        "ADPULSE_CLICKHOUSE_INGEST_PASSWORD": 'fixture-ingest-"quoted"-p4ss',
    },
    "api": {
        "ADPULSE_CLICKHOUSE_API_PASSWORD": "fixture-api-back\\slash-`x`",
        "ADPULSE_DASHBOARD_API_KEY": "fixture-dashkey-adp_3Wq8Rz",
    },
    "dashboard": {"ADPULSE_API_KEY": "fixture-apikey-adp_7Yt3kQ"},
}
SECRET_VALUES = [v for values in SECRET.values() for v in values.values()]
# Every character systemd's env-file parser treats specially, and a few it does not.
TRICKY = {
    "SPACES": "  a  b  ",
    "QUOTES": "he said \"hi\" and 'bye'",
    "DOLLAR": "$HOME ${PATH} $$ $",
    "HASH": "#not a comment # x",
    "BACKSLASH": "C:\\dir\\n\\t\\",
    "BACKTICK": "`id` $(id)",
    "TAB": "a\tb",
    "EQUALS": "a=b==c",
    "SEMICOLON": ";x",
    "UNICODE": "café ✓",
    "EMPTY": "",
}


def units() -> dict[str, str]:
    return render_units(api_port=8000, dashboard_port=3000)


# Rendering


def test_units_run_the_services_from_current_as_the_service_user() -> None:
    rendered = {Path(p).name: text for p, text in units().items()}
    assert sorted(rendered) == [
        "adpulse-api.service",
        "adpulse-consumer.service",
        "adpulse-dashboard.service",
    ]
    execs = {name: _directives(text)["ExecStart"] for name, text in rendered.items()}
    assert execs == {
        "adpulse-consumer.service": ["/opt/adpulse/current/venv/bin/adpulse consume"],
        "adpulse-api.service": [
            "/opt/adpulse/current/venv/bin/adpulse serve --host 0.0.0.0 --port 8000"
        ],
        "adpulse-dashboard.service": [
            "/opt/adpulse/current/node/bin/node /opt/adpulse/current/dashboard/server.js"
        ],
    }
    for name, text in rendered.items():
        service = name.removeprefix("adpulse-").removesuffix(".service")
        d = _directives(text)
        assert d["User"] == ["adpulse"] and d["Restart"] == ["on-failure"]
        assert d["EnvironmentFile"] == ["/etc/adpulse/common.env", f"-/etc/adpulse/{service}.env"]
        assert d["CapabilityBoundingSet"] == [""]
        assert d["SystemCallFilter"] == ["@system-service"]
        assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
        assert d["ProtectSystem"] == ["strict"]
        assert "TimeoutStopSec" in d and "RestartSec" in d


def test_memory_deny_write_execute_is_off_only_for_node() -> None:
    for path, text in units().items():
        d = _directives(text)
        if path.endswith("adpulse-dashboard.service"):
            assert "MemoryDenyWriteExecute" not in d and "ReadWritePaths" not in d
            assert "V8's JIT" in text
        else:
            assert d["MemoryDenyWriteExecute"] == ["yes"]
            assert d["ReadWritePaths"] == ["/var/lib/adpulse"]


def test_dashboard_gets_the_api_url_and_its_key_only_from_its_secret_file() -> None:
    dashboard = units()["/etc/systemd/system/adpulse-dashboard.service"]
    env = _directives(dashboard)["Environment"][0].split()
    assert "ADPULSE_API_URL=http://127.0.0.1:8000" in env
    assert "PORT=3000" in env and "HOSTNAME=0.0.0.0" in env
    assert "ADPULSE_API_KEY" not in " ".join(env)
    files = render_env_files(PLAIN, SECRET)
    assert "ADPULSE_API_KEY=" in files["/etc/adpulse/dashboard.env"][0]


def test_ports_are_checked() -> None:
    with pytest.raises(ConfigError, match="both 8000"):
        render_units(api_port=8000, dashboard_port=8000)
    with pytest.raises(ConfigError, match="dashboard_port 0 is not a TCP port"):
        render_units(api_port=8000, dashboard_port=0)


def test_no_secret_value_in_any_unit_and_only_in_0600_files() -> None:
    rendered = units()
    files = render_env_files(PLAIN, SECRET)
    for secret in SECRET_VALUES:
        quoted = env_line("K", secret).removeprefix("K=")  # as an env file holds it
        assert not [p for p, t in rendered.items() if secret in t or quoted in t], secret
        holders = [p for p, (content, _) in files.items() if quoted in content]
        assert len(holders) == 1 and files[holders[0]][1] == 0o600, (secret, holders)
    assert files["/etc/adpulse/common.env"][1] == 0o644
    assert sorted(files) == [
        "/etc/adpulse/api.env",
        "/etc/adpulse/common.env",
        "/etc/adpulse/consumer.env",
        "/etc/adpulse/dashboard.env",
    ]


def test_snapshots() -> None:
    files = {f"units/{Path(p).name}": text for p, text in units().items()}
    files |= {f"env/{Path(p).name}": c for p, (c, _) in render_env_files(PLAIN, SECRET).items()}
    _check_snapshots(files)


def test_flat_secrets_split_so_each_service_gets_only_its_own() -> None:
    flat = {key: value for values in SECRET.values() for key, value in values.items()}
    assert secrets_by_service(flat) == SECRET
    with pytest.raises(ConfigError, match="no service reads the secret ADPULSE_CLICKHOUSE_ADMIN"):
        secrets_by_service({**flat, "ADPULSE_CLICKHOUSE_ADMIN_PASSWORD": "x"})


# Environment file syntax


def test_env_line_quotes_what_systemd_unescapes() -> None:
    assert env_line("A", "plain") == 'A="plain"'
    assert env_line("A", 'x "y" $z `w` \\v #') == 'A="x \\"y\\" \\$z \\`w\\` \\\\v #"'
    assert env_line("A", "") == 'A=""'


def test_a_newline_is_refused_naming_the_key_not_the_value() -> None:
    with pytest.raises(ConfigError, match="value of ADPULSE_API_KEY holds a line break") as caught:
        env_line("ADPULSE_API_KEY", "first\nsecond-secret")
    assert "second-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="line break"):
        env_line("K", "a\rb")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("1ABC", "x", "name '1ABC' is not valid"),
        ("A-B", "x", "name 'A-B' is not valid"),
        ("A", "nul\x00", r"control characters \(U\+0000\)"),
        ("A", "esc\x1b[0m", r"control characters \(U\+001B\)"),
        ("A", "surrogate\udc80", "not valid Unicode"),
    ],
)
def test_env_line_refuses(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        env_line(key, value)


def test_env_files_refuse_a_key_in_both_places_and_unknown_services() -> None:
    with pytest.raises(ConfigError, match="ADPULSE_STACK_NAME set both as plain"):
        render_env_files(PLAIN, {"api": {"ADPULSE_STACK_NAME": "x"}})
    with pytest.raises(ConfigError, match="unknown services web"):
        render_env_files(PLAIN, {"web": {}})


# systemd-analyze verify


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root for `systemd-analyze verify --root`: the system's units, ours, and executables
    stubbed at the paths our ExecStart= lines name (verify checks they exist and can run)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    root = tmp_path_factory.mktemp("unit-root")
    system = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    for binary in (layout.ADPULSE_BIN, layout.NODE_BIN):
        stub = root / str(binary).lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def _verify(root: Path, rendered: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for path, text in rendered.items():
        (root / path.lstrip("/")).write_text(text)
    names = [Path(p).name for p in rendered]
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", f"--root={root}", *names],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_unit_passes_systemd_analyze_verify(unit_root: Path) -> None:
    done = _verify(unit_root, units())
    # verify exits 0 on unknown keys and unparsable values, only warning: both count here.
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


@pytest.mark.parametrize(
    ("fault", "warning"),
    [
        ("MemoryDenyWriteExecute=yes", "Unknown key 'MemoryDenyWriteExecutes'"),
        ("RestartSec=5", "Failed to parse"),
        ("ExecStart=/opt/adpulse/current/venv/bin/adpulse", "is not executable"),
    ],
)
def test_verify_catches_a_broken_unit(unit_root: Path, fault: str, warning: str) -> None:
    broken = {
        "MemoryDenyWriteExecute=yes": "MemoryDenyWriteExecutes=yes",
        "RestartSec=5": "RestartSec=five",
        "ExecStart=/opt/adpulse/current/venv/bin/adpulse": "ExecStart=/opt/adpulse/missing/adpulse",
    }[fault]
    path = str(layout.unit_path("api"))
    text = units()[path]
    assert fault in text
    done = _verify(unit_root, {path: text.replace(fault, broken, 1)})
    assert warning in done.stderr
    _verify(unit_root, units())  # leave the good units for the other tests


# A real systemd: the user manager


_MANAGER_SCRIPT = """
set -eu
# Private to this mount namespace: systemd refuses to run unless /run/systemd/system exists,
# and its sandboxing (ProtectHome=, ProtectKernelTunables=...) masks paths with the nodes
# under /run/systemd/inaccessible, which a system manager would have made at boot.
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/system /run/systemd/inaccessible
cd /run/systemd/inaccessible
mkdir -m 0 dir
: > reg
chmod 0 reg
mkfifo -m 0 fifo
mknod -m 0 chr c 0 0
mknod -m 0 blk b 0 0
"$PYTHON" -c "import socket; socket.socket(socket.AF_UNIX).bind('sock')"
chmod 0 sock
cd /
exec "$SYSTEMD" --user --unit=basic.target
"""


@pytest.fixture(scope="module")
def user_manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment in which `systemd-run --user` reaches a real `systemd --user`."""
    systemd = next(
        (p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd") if os.access(p, os.X_OK)),
        None,
    )
    if os.geteuid() != 0 or systemd is None or not shutil.which("unshare"):
        pytest.skip("needs root, systemd and unshare(1) to start a user manager")
    if not Path("/run/systemd").is_dir():
        pytest.skip("no /run/systemd to mount over (a host that never ran systemd)")
    home = tmp_path_factory.mktemp("systemd-user")
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHON": sys.executable,
        "SYSTEMD": systemd,
    }
    log = (home / "manager.log").open("w")
    manager = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _MANAGER_SCRIPT],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        # The private socket appears before the manager answers on it: wait for startup. (Not
        # `is-system-running`: it says "offline" where /run/systemd/system is missing, as here.)
        while _manager_state(env) not in ("running", "degraded"):
            if manager.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"systemd --user did not start (exit {manager.poll()}); its log: "
                    + (home / "manager.log").read_text()[-2000:]
                )
            time.sleep(0.1)
        yield env
    finally:
        manager.terminate()
        try:
            manager.wait(timeout=20)
        except subprocess.TimeoutExpired:
            manager.kill()
            manager.wait()
        log.close()


def _manager_state(env: dict[str, str]) -> str:
    done = subprocess.run(
        ["systemctl", "--user", "show", "--property=SystemState", "--value"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.stdout.strip()


def _systemd_run(
    env: dict[str, str], properties: list[str], argv: list[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    args = ["systemd-run", "--user", "--wait", "--pipe", "--quiet", "--collect"]
    for prop in properties:
        args += ["--property", prop]
    return subprocess.run(
        [*args, "--", *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _environment_seen(env: dict[str, str], files: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """What a service gets from these environment files, in this order, according to systemd."""
    properties = []
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        properties.append(f"EnvironmentFile=-{tmp_path / name}")
    done = _systemd_run(env, properties, ["/usr/bin/env", "-0"])
    assert done.returncode == 0, done.stderr
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if item)


def test_env_files_round_trip_through_systemd(user_manager: dict[str, str], tmp_path: Path) -> None:
    secret = {"api": {"API_ONLY": 's3cret "x" $y'}}
    files = render_env_files(TRICKY, secret)
    seen = _environment_seen(
        user_manager,
        {
            "common.env": files["/etc/adpulse/common.env"][0],
            "api.env": files["/etc/adpulse/api.env"][0],
        },
        tmp_path,
    )
    assert {k: seen.get(k) for k in TRICKY} == TRICKY
    assert seen["API_ONLY"] == secret["api"]["API_ONLY"]


def test_the_round_trip_catches_naive_quoting(user_manager: dict[str, str], tmp_path: Path) -> None:
    naive = "".join(f"{k}={v}\n" for k, v in TRICKY.items())
    seen = _environment_seen(user_manager, {"naive.env": naive}, tmp_path)
    wrong = sorted(k for k in TRICKY if seen.get(k) != TRICKY[k])
    # Spaces at the ends are stripped; the trailing backslash joins the next line (BACKTICK)
    # to BACKSLASH's value.
    assert wrong == ["BACKSLASH", "BACKTICK", "SPACES"]


# Each runtime under its unit's sandbox

# Directives that need the real host (the user, /opt/adpulse, /etc/adpulse) or would restart
# the probe; everything else in [Service] is applied as rendered.
_HOST_ONLY = {"User", "Group", "WorkingDirectory", "EnvironmentFile", "ExecStart", "Restart"}


def _sandbox(unit_text: str, state_dir: Path, readable: list[Path]) -> list[str]:
    """The unit's [Service] settings for `systemd-run`, moved to this machine: the state dir
    is `state_dir`; paths the probe runs from that lie under a home directory are bound in
    read-only on a tmpfs home (ProtectHome=tmpfs), since ProtectHome=yes would hide them, and
    paths under /tmp or /var/tmp (a checkout there, as CI may make) are bound in over the
    unit's private /tmp (PrivateTmp=yes would hide them; systemd mounts /tmp first)."""
    properties = []
    for key, values in _directives(unit_text, section="Service").items():
        if key in _HOST_ONLY:
            continue
        for value in values:
            if key == "ReadWritePaths":
                value = str(state_dir)
            properties.append(f"{key}={value}")
    homes = ("/root", "/home", "/run/user")
    binds = sorted({str(p) for p in readable if str(p).startswith(homes)})
    if binds:
        assert "ProtectHome=yes" in properties
        properties[properties.index("ProtectHome=yes")] = "ProtectHome=tmpfs"
        properties += [f"BindReadOnlyPaths={p}" for p in binds]
    temporary = sorted({str(p) for p in readable if str(p).startswith(("/tmp/", "/var/tmp/"))})
    properties += [f"BindReadOnlyPaths={p}" for p in temporary]
    return properties


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A stand-in for /var/lib/adpulse. Not under /tmp or /var/tmp: PrivateTmp= replaces both,
    and a ReadWritePaths= inside them does not exist in the service's namespace."""
    path = Path(tempfile.mkdtemp(prefix="adpulse-test-state-", dir="/var/lib"))
    yield path
    shutil.rmtree(path)


_PYTHON_PROBE = """
import asyncio, os, sys
import uvloop, confluent_kafka, psycopg, orjson, msgspec, redis, clickhouse_driver, httptools
import api.server, consumers.service, cli

async def echo_once() -> bytes:
    async def answer(reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = await reader.read()
    writer.close()
    server.close()
    return data

assert uvloop.run(echo_once()) == b"ok"
open(sys.argv[1] + "/probe", "w").write("written")
for outside in ("/opt/adpulse-probe", "/etc/adpulse-probe"):
    try:
        open(outside, "w").close()
    except OSError:
        continue
    os.remove(outside)
    sys.exit(f"could write {outside}: ProtectSystem=strict is not in force")
print("python ok")
"""

_NODE_PROBE = """
const http = require("http");
const server = http.createServer((req, res) => res.end("ok"));
server.listen(0, "127.0.0.1", () => {
  http.get({ host: "127.0.0.1", port: server.address().port }, (res) => {
    let body = "";
    res.on("data", (chunk) => (body += chunk));
    res.on("end", () => { console.log("node " + body); server.close(); });
  });
});
"""


@pytest.mark.parametrize("service", ["consumer", "api"])
def test_python_services_run_under_their_sandbox(
    user_manager: dict[str, str], state_dir: Path, service: str
) -> None:
    """The project's native extensions (uvloop, librdkafka, psycopg...) load and serve a socket
    with the unit's settings, MemoryDenyWriteExecute= and @system-service included."""
    text = units()[str(layout.unit_path(service))]
    python = Path(sys.executable)
    readable = [ROOT, Path(sys.prefix), Path(sys.base_prefix), python.resolve().parent]
    properties = [*_sandbox(text, state_dir, readable), f"WorkingDirectory={ROOT}"]
    done = _systemd_run(
        user_manager, properties, [str(python), "-c", _PYTHON_PROBE, str(state_dir)]
    )
    assert (done.returncode, done.stdout.strip()) == (0, "python ok"), done.stderr[-3000:]
    assert (state_dir / "probe").read_text() == "written"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed")
    return found


def test_node_runs_under_the_dashboard_sandbox(
    user_manager: dict[str, str], state_dir: Path, node: str
) -> None:
    text = units()[str(layout.unit_path("dashboard"))]
    properties = _sandbox(text, state_dir, [Path(node).resolve().parent])
    done = _systemd_run(user_manager, properties, [node, "-e", _NODE_PROBE])
    assert (done.returncode, done.stdout.strip()) == (0, "node ok"), done.stderr[-3000:]


def test_node_dies_under_memory_deny_write_execute(
    user_manager: dict[str, str], state_dir: Path, node: str
) -> None:
    """Why the dashboard's unit leaves it out: V8 aborts at its first compiled function."""
    text = units()[str(layout.unit_path("dashboard"))]
    properties = _sandbox(text, state_dir, [Path(node).resolve().parent])
    done = _systemd_run(
        user_manager, [*properties, "MemoryDenyWriteExecute=yes"], [node, "-e", _NODE_PROBE]
    )
    assert done.returncode != 0 and "node ok" not in done.stdout


# Helpers


def _directives(text: str, section: str | None = None) -> dict[str, list[str]]:
    """Key -> values of a unit file (all sections, or one), comments and blank lines skipped."""
    found: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        if section is None or current == section:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _check_snapshots(files: dict[str, str]) -> None:
    """Compare with tests/deploy/snapshots/; UPDATE_SNAPSHOTS=1 rewrites them."""
    check_snapshots(files, SNAPSHOTS, label="", what="rendered units or env files",
                    where="tests/deploy/snapshots/", hint=UPDATE_HINT)  # fmt: skip
