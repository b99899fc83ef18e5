"""The Kubernetes manifests in deploy/k8s, rendered as `kubectl apply -k` would apply them.

Every overlay is rendered with `kubectl kustomize` and each object is validated offline,
strictly (unknown fields fail), against the API schema of one Kubernetes version. Then what
docs/OPERATIONS.md relies on is checked on the rendered objects: the probes, the rollout and
the disruption budget, autoscaling on CPU and SSE clients, the GPU for Ollama, SSE-safe
ingress settings, network isolation of the backing services, resources, pinned images, the
settings the app is given and the keys it is not. Without kubectl the tests fail under
``CI=true`` (.ci/run installs it) and are skipped elsewhere.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.services import missing
from tradecast.api.auth import KeyRing
from tradecast.settings import Settings, load_settings

K8S_VERSION = "1.32.0"
"""The Kubernetes API the manifests are validated against (a version kubernetes-validate
bundles; the floor of the `dev` extra's kubernetes-validate must bundle it too)."""

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = ROOT / "deploy" / "k8s" / "overlays"
OVERLAYS = ("dev", "prod")
NAMESPACES = {"dev": "tradecast-dev", "prod": "tradecast"}
PACKAGED_CARD = ROOT / "src" / "tradecast" / "agents" / "prompts" / "persona_default.toml"

APP = "tradecast"  # the app's Deployment, Service and container
CLUSTER_SCOPED = {"Namespace"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
BACKENDS = {
    # workload -> the workloads it must admit, and nothing else
    "dev": {
        "redis": {APP},
        "postgresql": {APP},
        "chroma": {APP},
        "ollama": {APP, "ollama-pull"},
    },
    # Redis, PostgreSQL and Chroma are outside the cluster in prod
    "prod": {"ollama": {APP, "ollama-pull"}},
}

Obj = dict[str, Any]

_rendered: dict[str, list[Obj]] = {}


def render(overlay: str) -> list[Obj]:
    """The overlay's objects, as `kubectl kustomize` renders them (once per session)."""
    if overlay not in _rendered:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            missing("kubectl", "not installed")
        assert kubectl is not None
        result = subprocess.run(
            [kubectl, "kustomize", str(OVERLAYS_DIR / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
        _rendered[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return _rendered[overlay]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> list[Obj]:
    return render(overlay)


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Obj) -> Obj:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def pod_labels(workload: Obj) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["metadata"].get("labels", {}))


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def containers(workload: Obj) -> Iterator[Obj]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def app_container(objects: list[Obj]) -> Obj:
    (container,) = [c for c in pod_spec(named(objects, "Deployment", APP))["containers"]]
    return container


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selected(objects: list[Obj], selector: Obj) -> set[str]:
    """The names of the workloads whose pods a selector selects."""
    return {w["metadata"]["name"] for w in workloads(objects) if selects(selector, pod_labels(w))}


def resolve_port(container: Obj, port: int | str) -> int:
    """A probe's or a Service's target port, as a number on the container."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    raise AssertionError(f"port {port!r} is not a port of container {container['name']}")


def config_env(objects: list[Obj], container: Obj) -> dict[str, str]:
    """The environment a container gets from its envFrom ConfigMaps and Secrets and env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        elif "secretRef" in source:
            name = source["secretRef"]["name"]
            # prod's Secret is created out of band: none is rendered
            for secret in of_kind(objects, "Secret"):
                if secret["metadata"]["name"] == name:
                    env.update(secret_data(secret))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env


def secret_data(secret: Obj) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    return data


# --- rendering and schema ---------------------------------------------------------------------


def test_every_object_validates_against_the_kubernetes_api(objects: list[Obj], overlay: str):
    import kubernetes_validate

    assert objects
    problems = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
        if obj["kind"] in CLUSTER_SCOPED:
            continue
        if obj["metadata"].get("namespace") != NAMESPACES[overlay]:
            problems.append(f"{where}: not in namespace {NAMESPACES[overlay]}")
    assert not problems, "\n".join(problems)


def test_every_object_carries_the_recommended_labels(objects: list[Obj]):
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/part-of") == "tradecast", where
        assert labels.get("app.kubernetes.io/managed-by") == "kustomize", where
    for workload in workloads(objects):
        assert "app.kubernetes.io/name" in pod_labels(workload), workload["metadata"]["name"]


# --- the app --------------------------------------------------------------------------------


def test_app_probes_readiness_on_readyz_and_liveness_on_healthz(objects: list[Obj]):
    container = app_container(objects)
    # the server listens where the pod declares it
    args = container["args"]
    listening = int(args[args.index("--port") + 1])
    assert resolve_port(container, "http") == listening

    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    startup = container["startupProbe"]
    assert readiness["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    assert resolve_port(container, readiness["port"]) == listening
    assert resolve_port(container, liveness["port"]) == listening
    assert resolve_port(container, startup["httpGet"]["port"]) == listening
    # the startup probe gives a cold start minutes, not seconds, before liveness counts
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120

    service = named(objects, "Service", APP)
    assert selected(objects, {"matchLabels": service["spec"]["selector"]}) == {APP}
    for port in service["spec"]["ports"]:
        assert resolve_port(container, port["targetPort"]) == listening


def test_app_rolls_out_one_new_replica_before_an_old_one_stops(objects: list[Obj]):
    deployment = named(objects, "Deployment", APP)
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert (rolling["maxUnavailable"], rolling["maxSurge"]) == (0, 1)

    sleep = app_container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    # after the preStop pause the server has as long as compose gives it to close its streams,
    # cancel a tick in flight and release the lease (else the next replica waits one ttl)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    stop_grace = int(compose["services"]["app"]["stop_grace_period"].removesuffix("s"))
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert grace - int(sleep[1]) >= stop_grace


def test_app_root_filesystem_is_read_only_with_its_data_dir_and_tmp_writable(objects: list[Obj]):
    container = app_container(objects)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    data_dir = config_env(objects, container)["TRADECAST_DATA_DIR"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in (data_dir, "/tmp"):
        assert path in mounts and not mounts[path].get("readOnly", False), path
    volumes = {v["name"]: v for v in pod_spec(named(objects, "Deployment", APP))["volumes"]}
    assert "emptyDir" in volumes[mounts[data_dir]["name"]]


def test_pod_disruption_budget_covers_exactly_the_app(objects: list[Obj]):
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert selected(objects, pdb["spec"]["selector"]) == {APP}
    spec = pdb["spec"]
    assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable", 0) >= 1


def test_prod_autoscales_on_cpu_and_sse_clients_per_pod():
    objects = render("prod")
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", APP)
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Resource"]["resource"]["target"]["type"] == "Utilization"
    pods = metrics["Pods"]["pods"]
    assert pods["metric"]["name"] == "tradecast_sse_clients"
    assert pods["target"]["type"] == "AverageValue"
    assert 0 < int(pods["target"]["averageValue"]) <= 1000  # 1,000 a replica was measured
    # the autoscaler owns the replica count: an apply must not reset it
    assert "replicas" not in named(objects, "Deployment", APP)["spec"]


def test_dev_runs_two_replicas_without_an_autoscaler():
    objects = render("dev")
    assert not of_kind(objects, "HorizontalPodAutoscaler")
    assert named(objects, "Deployment", APP)["spec"]["replicas"] in (1, 2)


def test_app_settings_are_real_settings_and_load(
    objects: list[Obj], monkeypatch: pytest.MonkeyPatch
):
    deployment = named(objects, "Deployment", APP)
    # Kubernetes would set TRADECAST_PORT etc. for the `tradecast` Service: the settings' prefix
    assert pod_spec(deployment)["enableServiceLinks"] is False

    env = config_env(objects, app_container(objects))
    names = [name for name in env if name.startswith("TRADECAST_")]
    assert names
    for name in names:
        assert _names_a_setting(name), f"{name} is not a tradecast setting"
    for name in names:
        monkeypatch.setenv(name, env[name])
    settings = load_settings()
    assert settings.llm.backend == "ollama"
    assert str(settings.data_dir) == "/data"


def _names_a_setting(env_name: str) -> bool:
    """Whether TRADECAST_A__B names the field a.b of the settings (Settings ignores others)."""
    model: Any = Settings
    for part in env_name.removeprefix("TRADECAST_").lower().split("__"):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_persona_card_is_the_packaged_default_mounted_where_the_setting_points(
    objects: list[Obj],
):
    container = app_container(objects)
    card = Path(config_env(objects, container)["TRADECAST_DESK__PERSONA_CARD"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(card.parent)]
    volumes = {v["name"]: v for v in pod_spec(named(objects, "Deployment", APP))["volumes"]}
    config_map = named(objects, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert config_map["data"][card.name] == PACKAGED_CARD.read_text()


# --- Ollama ---------------------------------------------------------------------------------


def _gpus(container: Obj) -> tuple[str | None, str | None]:
    resources = container["resources"]
    return (
        resources.get("requests", {}).get("nvidia.com/gpu"),
        resources.get("limits", {}).get("nvidia.com/gpu"),
    )


def test_prod_ollama_gets_a_gpu_on_the_gpu_node_pool():
    ollama = named(render("prod"), "StatefulSet", "ollama")
    (container,) = pod_spec(ollama)["containers"]
    assert _gpus(container) == ("1", "1")
    spec = pod_spec(ollama)
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert any(
        m["mountPath"] == next(e["value"] for e in container["env"] if e["name"] == "HOME")
        for m in container["volumeMounts"]
    )
    (claim,) = ollama["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] in {m["name"] for m in container["volumeMounts"]}


def test_dev_ollama_runs_on_the_cpu():
    ollama = named(render("dev"), "StatefulSet", "ollama")
    (container,) = pod_spec(ollama)["containers"]
    assert _gpus(container) == (None, None)
    assert "nodeSelector" not in pod_spec(ollama)


def test_model_pull_job_pulls_the_models_the_app_asks_ollama_for(objects: list[Obj]):
    app = app_container(objects)
    app_env = config_env(objects, app)
    (job,) = of_kind(objects, "Job")
    (pull,) = pod_spec(job)["containers"]
    env = {e["name"]: e for e in pull["env"]}
    pulled = set()
    for item in env.values():
        ref = item.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            pulled.add(named(objects, "ConfigMap", ref["name"])["data"][ref["key"]])
    assert pulled == {
        app_env["TRADECAST_LLM__OLLAMA_MODEL"],
        app_env["TRADECAST_LLM__PERSONA__MODEL"],
    }
    script = " ".join(pull.get("command", []) + pull.get("args", []))
    assert "ollama pull" in script
    for name, item in env.items():
        if "configMapKeyRef" in item.get("valueFrom", {}):
            assert f"${name}" in script, f"{name} is never pulled"
    # the Job and the app talk to the same Ollama Service, on its port
    service = named(objects, "Service", "ollama")
    port = service["spec"]["ports"][0]["port"]
    assert env["OLLAMA_HOST"]["value"] == app_env["TRADECAST_LLM__OLLAMA_BASE_URL"]
    assert app_env["TRADECAST_LLM__OLLAMA_BASE_URL"] == f"http://ollama:{port}"
    assert selected(objects, {"matchLabels": service["spec"]["selector"]}) == {"ollama"}


# --- ingress ----------------------------------------------------------------------------------


def _seconds(annotations: dict[str, str], name: str) -> int:
    return int(annotations.get(f"nginx.ingress.kubernetes.io/{name}", "60"))


def test_ingress_keeps_sse_streams_unbuffered_and_open(objects: list[Obj]):
    ingresses = of_kind(objects, "Ingress")
    assert ingresses
    streams = None
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations", {})
        assert ingress["spec"]["ingressClassName"] == "nginx"
        # every route can answer with SSE (the chat replies and run streams too)
        assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
        assert _seconds(annotations, "proxy-read-timeout") >= 600
        assert _seconds(annotations, "proxy-send-timeout") >= 600
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == APP
                if path["path"] == "/v1/streams/":
                    streams = annotations
    assert streams is not None, "no Ingress routes /v1/streams/"
    assert _seconds(streams, "proxy-read-timeout") >= 3600
    assert _seconds(streams, "proxy-send-timeout") >= 3600
    assert streams["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"


# --- network policies -----------------------------------------------------------------------


def test_backing_services_admit_only_the_app(objects: list[Obj], overlay: str):
    policies = of_kind(objects, "NetworkPolicy")
    # anything no policy admits is refused
    assert any(
        p["spec"]["podSelector"] == {} and "Ingress" in p["spec"]["policyTypes"]
        and not p["spec"].get("ingress")
        for p in policies
    )  # fmt: skip
    present = {w["metadata"]["name"] for w in workloads(objects)}
    assert set(BACKENDS[overlay]) <= present
    for backend, allowed in BACKENDS[overlay].items():
        labels = pod_labels(named(objects, "StatefulSet", backend))
        covering = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert covering, f"no NetworkPolicy selects {backend}"
        admitted: set[str] = set()
        for policy in covering:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):
                peers = rule.get("from")
                assert peers, f"{policy['metadata']['name']} admits any source to {backend}"
                for peer in peers:
                    assert set(peer) == {"podSelector"}, f"{backend}: a peer beyond pods: {peer}"
                    admitted |= selected(objects, peer["podSelector"])
        assert admitted == allowed, f"{backend} admits {admitted}"


# --- every container ------------------------------------------------------------------------


def test_every_container_has_resource_requests_and_limits(objects: list[Obj]):
    for workload in workloads(objects):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


def test_every_image_is_pinned(objects: list[Obj]):
    for workload in workloads(objects):
        for container in containers(workload):
            image = container["image"]
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{image}: no tag"
            assert tag != "latest", f"{image}: latest"


def test_every_pod_meets_the_restricted_pod_security_standard(objects: list[Obj]):
    # the namespace enforces it: a pod that does not is refused at admission
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload in workloads(objects):
        spec = pod_spec(workload)
        where = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("hostNetwork", False) is False, where
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert not context["capabilities"].get("add"), where
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, where


# --- secrets --------------------------------------------------------------------------------

_KEYISH = re.compile(r"\b(viewer|operator|admin):([^,\s]+)")


def test_prod_carries_no_secret_values():
    objects = render("prod")
    assert not of_kind(objects, "Secret")  # created out of band
    for config_map in of_kind(objects, "ConfigMap"):
        for value in config_map.get("data", {}).values():
            assert not _KEYISH.search(value), config_map["metadata"]["name"]
            assert not re.search(r"://[^/\s]*:[^/\s]*@", value), "a password in a URL"


def test_dev_secrets_hold_only_obviously_dev_values():
    objects = render("dev")
    secrets = of_kind(objects, "Secret")
    assert secrets
    env = config_env(objects, app_container(objects))
    KeyRing.parse(env["TRADECAST_API_KEYS"])  # keys the app accepts
    for secret in secrets:
        for name, value in secret_data(secret).items():
            for _, key in _KEYISH.findall(value):
                assert key.startswith("dev-") and key.endswith("-not-secret"), name
            password = re.search(r"://[^:/\s]*:([^@\s]+)@", value)
            if password:
                assert password[1].startswith("dev-"), name
            if "PASSWORD" in name:
                assert value.startswith("dev-") and value.endswith("-not-secret"), name
    # and none of it sits in a ConfigMap, where it would be readable by anyone with view rights
    for config_map in of_kind(objects, "ConfigMap"):
        assert "TRADECAST_API_KEYS" not in config_map.get("data", {})
