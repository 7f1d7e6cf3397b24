#!/usr/bin/python3
"""Helpers for tests/container/run.sh (needs only python3-yaml, which yamllint brings).

  manifests.py check EXAMPLES_DIR
      Offline structural checks of examples/ (no cluster, no schema download): required fields,
      keys known to the Kubernetes API (a misspelt key would be dropped silently by a real
      apply with client-side defaults), secrets only by reference, pinned images, the Job's
      retry and clean-up settings, compose ordering conditions. Prints one line per problem.

  manifests.py podman IN OUT --image OLD=NEW ... [--job-pod]
      Rewrites a Deployment (or, with --job-pod, a Job's pod template as a bare Pod) for
      `podman kube play` on this machine: one replica, host network (loopback only), local
      images, init containers kept after they run so the test can read their logs.

  manifests.py secret IN OUT URL
      Writes the example Secret with the test database's URL, in the form podman's secretKeyRef reads.
"""
import base64
import json
import re
import sys

import yaml

POD_SPEC_KEYS = {
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
    "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
    "hostIPC", "hostNetwork", "hostPID", "hostUsers", "hostname", "imagePullSecrets",
    "initContainers", "nodeName", "nodeSelector", "os", "overhead", "preemptionPolicy",
    "priority", "priorityClassName", "readinessGates", "resourceClaims", "restartPolicy",
    "runtimeClassName", "schedulerName", "schedulingGates", "securityContext",
    "serviceAccount", "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace",
    "subdomain", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints",
    "volumes",
}
CONTAINER_KEYS = {
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle",
    "livenessProbe", "name", "ports", "readinessProbe", "resizePolicy", "resources",
    "restartPolicy", "securityContext", "startupProbe", "stdin", "stdinOnce",
    "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices",
    "volumeMounts", "workingDir",
}
PROBE_KEYS = {"exec", "failureThreshold", "grpc", "httpGet", "initialDelaySeconds",
              "periodSeconds", "successThreshold", "tcpSocket", "terminationGracePeriodSeconds",
              "timeoutSeconds"}
CONTAINER_SECURITY_KEYS = {"allowPrivilegeEscalation", "capabilities", "privileged", "procMount",
                           "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser",
                           "seLinuxOptions", "seccompProfile", "windowsOptions", "appArmorProfile"}
POD_SECURITY_KEYS = {"fsGroup", "fsGroupChangePolicy", "runAsGroup", "runAsNonRoot", "runAsUser",
                     "seLinuxOptions", "seccompProfile", "supplementalGroups", "sysctls",
                     "windowsOptions", "appArmorProfile"}
DEPLOYMENT_SPEC_KEYS = {"minReadySeconds", "paused", "progressDeadlineSeconds", "replicas",
                        "revisionHistoryLimit", "selector", "strategy", "template"}
JOB_SPEC_KEYS = {"activeDeadlineSeconds", "backoffLimit", "backoffLimitPerIndex", "completionMode",
                 "completions", "managedBy", "manualSelector", "maxFailedIndexes", "parallelism",
                 "podFailurePolicy", "podReplacementPolicy", "selector", "successPolicy",
                 "suspend", "template", "ttlSecondsAfterFinished"}
METADATA_KEYS = {"annotations", "generateName", "labels", "name", "namespace"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 18}  # docs/exit-codes.md

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def unknown_keys(where, obj, allowed):
    if not isinstance(obj, dict):
        problem(where, "expected a mapping")
        return
    for key in obj:
        if key not in allowed:
            problem(where, f"unknown key '{key}'")


def check_metadata(where, meta, need_name=True):
    unknown_keys(where + ".metadata", meta or {}, METADATA_KEYS)
    name = (meta or {}).get("name")
    if need_name and (not isinstance(name, str) or len(name) > 63 or not DNS1123.match(name)):
        problem(where, f"metadata.name {name!r} is not a DNS-1123 name")
    for k, v in ((meta or {}).get("labels") or {}).items():
        if not isinstance(v, str):
            problem(where, f"label {k} must be a string")


def check_container(where, c, role):
    unknown_keys(where, c, CONTAINER_KEYS)
    if not DNS1123.match(str(c.get("name", ""))):
        problem(where, "container name missing or not DNS-1123")
    image = c.get("image", "")
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        problem(where, f"image {image!r} must carry an explicit version tag")
    for key in ("command", "args"):
        if key in c and not all(isinstance(a, str) for a in c[key]):
            problem(where, f"{key} must be a list of strings (quote numbers)")
    for e in c.get("env", []):
        unknown_keys(where + ".env", e, {"name", "value", "valueFrom"})
        value = e.get("value")
        if value is not None and not isinstance(value, str):
            problem(where, f"env {e.get('name')}: value must be a string")
        if isinstance(value, str) and re.search(r"://[^/@\s]*:[^/@\s]*@", value):
            problem(where, f"env {e.get('name')}: a password inline; use secretKeyRef")
    env = {e["name"]: e for e in c.get("env", []) if "name" in e}
    if role in ("migrate", "upgrade", "app"):
        url = env.get("DATABASE_URL") or env.get("STEPWISE_DATABASE_URL")
        if not url or "secretKeyRef" not in (url.get("valueFrom") or {}):
            problem(where, "DATABASE_URL must come from a Secret (valueFrom.secretKeyRef)")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            unknown_keys(f"{where}.{probe}", c[probe], PROBE_KEYS)
    if "securityContext" in c:
        unknown_keys(where + ".securityContext", c["securityContext"], CONTAINER_SECURITY_KEYS)
    res = c.get("resources", {})
    unknown_keys(where + ".resources", res, {"claims", "limits", "requests"})
    if "memory" not in res.get("limits", {}):
        problem(where, "no memory limit")


def check_pod_spec(where, spec, kind):
    unknown_keys(where, spec, POD_SPEC_KEYS)
    unknown_keys(where + ".securityContext", spec.get("securityContext", {}), POD_SECURITY_KEYS)
    if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
        problem(where, "securityContext.runAsNonRoot must be true")
    names = [c.get("name") for c in spec.get("initContainers", []) + spec.get("containers", [])]
    if len(names) != len(set(names)):
        problem(where, "container names are not unique")
    if not spec.get("containers"):
        problem(where, "no containers")
    for c in spec.get("initContainers", []):
        check_container(f"{where}.initContainers[{c.get('name')}]", c, "migrate")
    for c in spec.get("containers", []):
        check_container(f"{where}.containers[{c.get('name')}]", c,
                        "upgrade" if kind == "Job" else "app")
    return spec


def check_upgrader(where, pod):
    """A Deployment running `stepwise serve`: probes on its HTTP endpoints, the token by reference."""
    c = (pod.get("containers") or [{}])[0]
    args = c.get("args", [])
    if "--listen" not in args or args.index("--listen") + 1 >= len(args):
        problem(where, "serve needs --listen HOST:PORT (the default listens on loopback only)")
    env = {e["name"]: e for e in c.get("env", []) if "name" in e}
    token = env.get("STEPWISE_TOKEN")
    if "--token-file" not in args and (not token or "secretKeyRef" not in (token.get("valueFrom") or {})):
        problem(where, "the token must come from a Secret (STEPWISE_TOKEN valueFrom.secretKeyRef, or --token-file)")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = (c.get(probe, {}).get("httpGet") or {}).get("path")
        if got != path:
            problem(where, f"{probe} should be httpGet {path}")
    ports = {p.get("name") for p in c.get("ports", [])}
    if "http" not in ports:
        problem(where, "name the serve port 'http' (the probes and the Service refer to it)")


def check_service(where, s):
    spec = s.get("spec", {})
    unknown_keys(where + ".spec", spec, {"selector", "ports", "type", "clusterIP", "sessionAffinity"})
    if not spec.get("selector"):
        problem(where, "a Service needs a selector")
    for p in spec.get("ports", []):
        unknown_keys(where + ".spec.ports", p, {"name", "port", "targetPort", "protocol", "appProtocol"})
        if not isinstance(p.get("port"), int):
            problem(where, "ports[].port must be an integer")


def check_deployment(where, d):
    spec = d.get("spec", {})
    unknown_keys(where + ".spec", spec, DEPLOYMENT_SPEC_KEYS)
    tpl = spec.get("template", {})
    check_metadata(where + ".spec.template", tpl.get("metadata"), need_name=False)
    selector = spec.get("selector", {}).get("matchLabels", {})
    labels = tpl.get("metadata", {}).get("labels", {})
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        problem(where, "spec.selector.matchLabels must match the template's labels")
    pod = check_pod_spec(where + ".spec.template.spec", tpl.get("spec", {}), "Deployment")
    if ((pod.get("containers") or [{}])[0].get("args") or [None])[0] == "serve":
        check_upgrader(where, pod)
        return
    inits = pod.get("initContainers", [])
    if not inits or inits[0].get("args", [None])[0] != "up":
        problem(where, "the first init container must run `stepwise up`")
    for c in pod.get("containers", []):
        cmd = (c.get("readinessProbe", {}).get("exec") or {}).get("command", [])
        if cmd[:2] != ["stepwise", "validate"]:
            problem(where, f"container {c.get('name')}: readiness probe should be `stepwise validate`")
        elif "--release" not in cmd:
            problem(where, "readiness `validate` needs --release (a rolling upgrade moves the schema ahead)")


def check_job(where, j):
    spec = j.get("spec", {})
    unknown_keys(where + ".spec", spec, JOB_SPEC_KEYS)
    for key in ("backoffLimit", "ttlSecondsAfterFinished", "activeDeadlineSeconds"):
        if not isinstance(spec.get(key), int) or spec[key] < 0:
            problem(where, f"spec.{key} must be a non-negative integer")
    tpl = spec.get("template", {})
    pod = check_pod_spec(where + ".spec.template.spec", tpl.get("spec", {}), "Job")
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        problem(where, "restartPolicy must be Never or OnFailure")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < 10:
        problem(where, "terminationGracePeriodSeconds must leave stepwise time to cancel (>= 10)")
    cmd = pod.get("containers", [{}])[0].get("args", [])
    if "--shard" in cmd:
        check_fleet_job(where, spec, cmd)
    elif cmd[:1] != ["upgrade"] or "--to" not in cmd:
        problem(where, "the Job must run `stepwise upgrade --to R`")
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        if pod.get("restartPolicy") != "Never":
            problem(where, "podFailurePolicy needs restartPolicy: Never")
        names = {c.get("name") for c in pod.get("containers", [])}
        for rule in pfp.get("rules", []):
            unknown_keys(where + ".podFailurePolicy.rule", rule,
                         {"action", "onExitCodes", "onPodConditions"})
            if rule.get("action") not in ("Ignore", "FailJob", "Count", "FailIndex"):
                problem(where, f"podFailurePolicy action {rule.get('action')!r}")
            oec = rule.get("onExitCodes")
            if oec:
                if oec.get("containerName") not in names:
                    problem(where, "podFailurePolicy names an unknown container")
                bad = [v for v in oec.get("values", []) if v not in EXIT_CODES or v == 0]
                if bad:
                    problem(where, f"podFailurePolicy exit codes not in docs/exit-codes.md: {bad}")
                if 7 in oec.get("values", []) and rule.get("action") == "FailJob":
                    problem(where, "exit 7 (interrupted) must stay retryable")


def check_fleet_job(where, spec, cmd):
    """A fleet spread over an Indexed Job: each pod its shard, all shards covered."""
    if spec.get("completionMode") != "Indexed":
        problem(where, "a --shard Job needs completionMode: Indexed (JOB_COMPLETION_INDEX)")
    shard = cmd[cmd.index("--shard") + 1] if cmd.index("--shard") + 1 < len(cmd) else ""
    m = re.fullmatch(r"auto/([0-9]+)", shard)
    if not m:
        problem(where, f"--shard {shard!r}: use auto/N (the index from JOB_COMPLETION_INDEX)")
    elif int(m.group(1)) != spec.get("completions"):
        problem(where, f"--shard {shard}: N must equal spec.completions ({spec.get('completions')})")
    if not {"--targets", "--tenant-schemas", "--tenant-query"} & set(cmd):
        problem(where, "a fleet Job needs --targets, --tenant-schemas or --tenant-query")
    if cmd[-1:] not in (["up"], ["status"], ["validate"]) and "migrate-to" not in cmd:
        problem(where, "a fleet Job runs up, migrate-to, validate or status")


def check_secret(where, s):
    data = s.get("stringData") or s.get("data")
    if not data or "url" not in data:
        problem(where, "the Secret must hold key 'url'")
    elif "CHANGE-ME" not in str(data.get("url")):
        problem(where, "an example Secret must not carry a real-looking password (use CHANGE-ME)")


def check_kubernetes(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for i, d in enumerate(docs):
        where = f"{path}[{i}]"
        kind = d.get("kind")
        expected_api = {"Deployment": "apps/v1", "Job": "batch/v1", "Secret": "v1", "Service": "v1",
                        "Kustomization": "kustomize.config.k8s.io/v1beta1"}
        if kind not in expected_api:
            problem(where, f"unexpected kind {kind!r}")
            continue
        if d.get("apiVersion") != expected_api[kind]:
            problem(where, f"{kind} needs apiVersion {expected_api[kind]}")
        if kind == "Kustomization":
            continue
        check_metadata(where, d.get("metadata"))
        {"Deployment": check_deployment, "Job": check_job, "Secret": check_secret,
         "Service": check_service}[kind](where, d)


def check_compose(path):
    with open(path) as f:
        c = yaml.safe_load(f)
    services = c.get("services", {})
    for name in ("postgres", "migrate", "app"):
        if name not in services:
            problem(path, f"no service {name}")
            return
    for name, s in services.items():
        env = s.get("environment", {})
        keys = env.keys() if isinstance(env, dict) else [str(e).split("=", 1)[0] for e in env]
        for k in keys:
            if re.search(r"PASSWORD$|DATABASE_URL$", str(k)):
                problem(path, f"service {name}: {k} inline; put it in the env file")
    if "healthcheck" not in services["postgres"]:
        problem(path, "postgres needs a healthcheck")
    dep = services["migrate"].get("depends_on", {})
    if (dep.get("postgres") or {}).get("condition") != "service_healthy":
        problem(path, "migrate must depend on postgres: condition: service_healthy")
    dep = services["app"].get("depends_on", {})
    if (dep.get("migrate") or {}).get("condition") != "service_completed_successfully":
        problem(path, "app must depend on migrate: condition: service_completed_successfully")
    if services["migrate"].get("restart", "no") not in ("no", False):
        problem(path, "migrate must not restart (a one-shot job)")
    if services["migrate"].get("command", ["up"])[0] != "up":
        problem(path, "migrate must run `up`")
    for name in ("migrate", "app"):
        if not services[name].get("env_file"):
            problem(path, f"service {name}: DATABASE_URL must come from an env_file")


def cmd_check(examples):
    import glob
    import os
    check_compose(os.path.join(examples, "compose.yaml"))
    for path in sorted(glob.glob(os.path.join(examples, "kubernetes", "*.yaml"))):
        check_kubernetes(path)
    with open(os.path.join(examples, "migrate.env.example")) as f:
        text = f.read()
    if "CHANGE-ME" not in text or "DATABASE_URL=" not in text:
        problem("migrate.env.example", "must show DATABASE_URL with a CHANGE-ME password")
    for p in problems:
        print(p)
    return 1 if problems else 0


def cmd_podman(src, dst, mapping, job_pod):
    with open(src) as f:
        doc = next(d for d in yaml.safe_load_all(f) if d)
    if job_pod:
        tpl = doc["spec"]["template"]
        doc = {"apiVersion": "v1", "kind": "Pod",
               "metadata": dict(tpl.get("metadata", {}), name=doc["metadata"]["name"]),
               "spec": tpl["spec"]}
        spec = doc["spec"]
    else:
        doc["spec"]["replicas"] = 1
        spec = doc["spec"]["template"]["spec"]
        # podman 4.3 applies the pod's restart policy to init containers too: under Always
        # (the only one a Deployment allows) `migrate` would be restarted after exiting 0 and
        # the app container would never start. OnFailure is what Kubernetes does with init
        # containers. "always" keeps the init container after it ran, so its logs can be read.
        spec["restartPolicy"] = "OnFailure"
        for meta in (doc.setdefault("metadata", {}), doc["spec"]["template"].setdefault("metadata", {})):
            meta.setdefault("annotations", {})["io.podman.annotations.init.container.type"] = "always"
    spec["hostNetwork"] = True
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        c["image"] = mapping.get(c["image"], c["image"])
        c["imagePullPolicy"] = "Never"
    with open(dst, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return 0


def cmd_secret(src, dst, url):
    with open(src) as f:
        doc = yaml.safe_load(f)
    # podman 4.3 reads the podman secret named by a secretKeyRef as JSON: key -> base64 value.
    data = dict(doc.get("stringData") or {}, url=url)
    with open(dst, "w") as f:
        json.dump({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}, f)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        return cmd_check(argv[1])
    if len(argv) >= 3 and argv[0] == "podman":
        mapping, job_pod, rest = {}, False, argv[3:]
        while rest:
            if rest[0] == "--job-pod":
                job_pod, rest = True, rest[1:]
            elif rest[0] == "--image" and len(rest) > 1:
                old, new = rest[1].split("=", 1)
                mapping[old], rest = new, rest[2:]
            else:
                break
        return cmd_podman(argv[1], argv[2], mapping, job_pod)
    if len(argv) == 4 and argv[0] == "secret":
        return cmd_secret(argv[1], argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
