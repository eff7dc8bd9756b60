"""Structural checks behind deploy/check.sh (run with .owl/deploy-venv's python).

  check.py dockerfile            the image builds with deploy/build.sh and nothing else
  check.py rendered FILE [OUT]   invariants of a rendered chart; writes its policy to OUT
  check.py iam DIR               IAM documents parse and are least-privilege

Each prints what it checked and exits 1 with every failure listed.
"""

import json
import pathlib
import re
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
failures = []


def fail(msg):
    failures.append(msg)


def done(what):
    if failures:
        for f in failures:
            print(f"  FAIL {f}")
        sys.exit(1)
    print(f"  ok   {what}")


# --- Dockerfile ------------------------------------------------------------------------


def dockerfile():
    text = (ROOT / "deploy/Dockerfile").read_text()
    # Join continuation lines into instructions.
    instructions = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instructions.append(line)
    runs = [i for i in instructions if i.upper().startswith("RUN ")]
    builds = [r for r in runs if "deploy/build.sh" in r]
    for r in runs:
        command = re.sub(r"--mount=\S+", "", r)
        if re.search(r"(^|[\s;&|(])(cargo|rustc|rustup)\s", command):
            fail(f"the Dockerfile runs cargo/rustc itself instead of deploy/build.sh: {r[:90]}")
    if len(builds) != 2:
        fail(f"expected 2 RUNs of deploy/build.sh (gateway, runtime layer), found {len(builds)}")
    for b in builds:
        if "deploy/build.sh --profile release --out /out" not in b:
            fail(f"a Dockerfile build is not `deploy/build.sh --profile release --out /out`: {b[:120]}")

    build_sh = (ROOT / "deploy/build.sh").read_text()
    m = re.search(r"^cargo_args=\((.*)\)$", build_sh, re.M)
    if not m:
        fail("deploy/build.sh: no cargo_args=(...) line")
    else:
        args = m.group(1).split()
        for need in ("build", "--locked", "--bins"):
            if need not in args:
                fail(f"deploy/build.sh's cargo command lacks {need}: {m.group(1)}")
        for bad in ("--features", "--no-default-features", "--all-features"):
            if bad in args:
                fail(f"deploy/build.sh changes the feature set ({bad}); tests use the default")

    # The toolchain: the one the tests use (major.minor), and at least rust-version.
    m = re.search(r"^ARG RUST_VERSION=(\d+)\.(\d+)(?:\.(\d+))?$", text, re.M)
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    if not m:
        fail("deploy/Dockerfile: no `ARG RUST_VERSION=X.Y.Z`")
    else:
        image = (int(m.group(1)), int(m.group(2)))
        out = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout
        local = tuple(int(x) for x in re.match(r"rustc (\d+)\.(\d+)", out).groups())
        if image != local:
            fail(
                f"deploy/Dockerfile builds with Rust {image[0]}.{image[1]}, the tests with "
                f"{local[0]}.{local[1]} ({out.strip()}): set ARG RUST_VERSION to match"
            )
        msrv = tuple(int(x) for x in cargo["package"]["rust-version"].split(".")[:2])
        if image < msrv:
            fail(f"RUST_VERSION {image} is below Cargo.toml's rust-version {msrv}")

    # Everything cargo reads is copied into both build stages.
    needed = {"Cargo.toml", "Cargo.lock", "src"}
    for section in ("bin", "bench", "test", "example"):
        for target in cargo.get(section, []):
            path = target.get("path") or f"{section}es/{target['name']}.rs"
            if section == "bench":
                path = target.get("path") or f"benches/{target['name']}.rs"
            needed.add(pathlib.PurePath(path).parts[0])
    for member in cargo.get("workspace", {}).get("members", []):
        if member != ".":
            needed.add(pathlib.PurePath(member).parts[0])
    if "lib" in cargo and "path" in cargo["lib"]:
        needed.add(pathlib.PurePath(cargo["lib"]["path"]).parts[0])
    if isinstance(cargo["package"].get("build"), str) or (ROOT / "build.rs").exists():
        needed.add("build.rs")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    for stage in stages:
        if "deploy/build.sh --profile" not in stage:
            continue
        copied = set()
        for c in re.findall(r"^COPY (?!--from)(.+)$", stage, re.M):
            parts = c.split()
            copied.update(pathlib.PurePath(p).parts[0] for p in parts[:-1])
        missing = needed - copied
        if missing:
            name = stage.split("\n", 1)[0]
            fail(f"stage `{name}` does not COPY {sorted(missing)}, which cargo needs")
    done("deploy/Dockerfile builds only through deploy/build.sh (cargo build --locked --bins), "
         "Rust version matches the tests' toolchain, every cargo input is copied")


# --- the rendered chart ----------------------------------------------------------------


def seconds(duration):
    m = re.fullmatch(r"(\d+)s", duration)
    if not m:
        fail(f"policy duration {duration!r} is not whole seconds")
        return 0
    return int(m.group(1))


def rendered(path, policy_out=None):
    import yaml

    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {d["kind"]: d for d in docs}
    for kind in ("Deployment", "Service", "ServiceAccount"):
        if kind not in kinds:
            fail(f"{path}: no {kind}")
    if failures:
        done(path)
    dep = kinds["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "owl"]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}

    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        fail("liveness probe is not GET /healthz")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        fail("readiness probe is not GET /readyz")
    for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if secret in env:
            fail(f"static AWS credentials in the pod ({secret}); use the service account")
    sec = pod.get("securityContext", {})
    if not sec.get("runAsNonRoot") or not isinstance(sec.get("runAsUser"), int):
        fail("the pod does not run as a numeric non-root user")
    csec = c.get("securityContext", {})
    if csec.get("allowPrivilegeEscalation") is not False or not csec.get("readOnlyRootFilesystem"):
        fail("the container allows privilege escalation or a writable root filesystem")

    # The policy is mounted as a directory (a subPath mount never sees updates).
    policy_file = env.get("OWL_POLICY", "")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    pm = mounts.get("policy")
    if not pm or policy_file != pm["mountPath"].rstrip("/") + "/policy.toml":
        fail(f"OWL_POLICY={policy_file!r} is not policy.toml in the `policy` volume mount")
    elif "subPath" in pm:
        fail("the policy volume is mounted with subPath: ConfigMap updates would never arrive")

    # preStop + shutdown_delay + drain_timeout fit in the grace period.
    policy = None
    cms = [d for d in docs if d["kind"] == "ConfigMap" and "policy.toml" in d.get("data", {})]
    if cms:
        policy_text = cms[0]["data"]["policy.toml"]
        try:
            policy = tomllib.loads(policy_text)
        except tomllib.TOMLDecodeError as e:
            fail(f"the policy ConfigMap is not TOML: {e}")
        if policy_out:
            pathlib.Path(policy_out).write_text(policy_text)
    if policy is not None:
        server = policy.get("server", {})
        delay = seconds(server.get("shutdown_delay", "5s"))
        drain = seconds(server.get("drain_timeout", "30s"))
        pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < pre + delay + drain:
            fail(f"terminationGracePeriodSeconds {grace} < preStop {pre} + shutdown_delay "
                 f"{delay} + drain_timeout {drain}")
        data_dir = policy.get("activations", {}).get("data_dir")
        if data_dir not in {m["mountPath"] for m in mounts.values()}:
            fail(f"[activations] data_dir {data_dir!r} is not a mounted volume")
        if "password_file" in policy.get("couchdb", {}):
            pf = pathlib.PurePath(policy["couchdb"]["password_file"])
            if str(pf.parent) not in {m["mountPath"] for m in mounts.values()}:
                fail(f"[couchdb] password_file {pf} is not in a mounted volume")
    # The HPA and the PDB select this Deployment's pods.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if "PodDisruptionBudget" in kinds:
        sel = kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            fail("the PodDisruptionBudget does not select owl's pods")
    if "HorizontalPodAutoscaler" in kinds:
        ref = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
        if ref["name"] != dep["metadata"]["name"]:
            fail("the HorizontalPodAutoscaler does not scale owl's Deployment")
        if "replicas" in dep["spec"]:
            fail("replicas is set while the HorizontalPodAutoscaler owns it")
    svc = kinds["Service"]["spec"]["selector"]
    if any(labels.get(k) != v for k, v in svc.items()):
        fail("the Service does not select owl's pods")
    done(f"{pathlib.Path(path).name}: probes, no static keys, non-root, policy mounted as a "
         "directory, grace period ≥ preStop + shutdown_delay + drain_timeout, selectors")


# --- IAM -------------------------------------------------------------------------------

# Findings accepted, per document, with the reason (docs/deploy.md repeats it).
ACCEPTED = {
    # owl sync creates functions and passes them their execution role: inherently a
    # permissions-management action, bounded to one role and to lambda.amazonaws.com.
    "owl-sync-policy.json": {"PERMISSIONS_MANAGEMENT_ACTIONS", "PRIVILEGE_ESCALATION"},
}
# Actions that have no resource-level permissions: "*" is the only possible resource.
STAR_RESOURCE_OK = {"lambda:ListFunctions"}


def as_list(x):
    return x if isinstance(x, list) else [x]


def iam(directory):
    from parliament import analyze_policy_string

    files = sorted(pathlib.Path(directory).glob("*.json"))
    if not files:
        fail(f"no IAM documents in {directory}")
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            fail(f"{f.name}: not JSON: {e}")
            continue
        if doc.get("Version") != "2012-10-17":
            fail(f"{f.name}: Version must be 2012-10-17")
        statements = as_list(doc.get("Statement", []))
        if not statements:
            fail(f"{f.name}: no statements")
        trust = f.name.endswith("-trust.json") or "-trust-" in f.name
        for s in statements:
            sid = s.get("Sid", "?")
            if s.get("Effect") not in ("Allow", "Deny"):
                fail(f"{f.name} {sid}: Effect must be Allow or Deny")
            if "NotAction" in s or "NotResource" in s or "NotPrincipal" in s:
                fail(f"{f.name} {sid}: Not* elements widen grants; list what is allowed")
            actions = as_list(s.get("Action", []))
            if not actions:
                fail(f"{f.name} {sid}: no Action")
            for a in actions:
                if "*" in a:
                    fail(f"{f.name} {sid}: wildcard action {a}")
            if trust:
                principal = s.get("Principal")
                if not isinstance(principal, dict) or principal == {"AWS": "*"}:
                    fail(f"{f.name} {sid}: a trust policy needs a specific Principal")
                if any(not a.startswith("sts:") for a in actions):
                    fail(f"{f.name} {sid}: a trust policy allows sts: actions only")
                if not s.get("Condition"):
                    fail(f"{f.name} {sid}: a trust policy without a Condition")
                continue
            if "Principal" in s:
                fail(f"{f.name} {sid}: an identity policy has no Principal")
            resources = as_list(s.get("Resource", []))
            if not resources:
                fail(f"{f.name} {sid}: no Resource")
            if "*" in resources and not set(actions) <= STAR_RESOURCE_OK:
                fail(f"{f.name} {sid}: Resource \"*\" for {actions}")
        if trust:
            continue
        policy = analyze_policy_string(f.read_text(), include_community_auditors=True)
        accepted = ACCEPTED.get(f.name, set())
        for finding in policy.findings:
            if finding.issue not in accepted:
                fail(f"{f.name}: parliament: {finding.issue} {finding.detail}")
    done(f"{len(files)} IAM documents: JSON, no wildcard actions, \"*\" resources only for "
         "actions without resource-level permissions, trust policies with conditions, "
         "parliament (unknown actions, resource mismatches, escalation) clean")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "dockerfile":
        dockerfile()
    elif cmd == "rendered":
        rendered(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif cmd == "iam":
        iam(sys.argv[2])
    else:
        sys.exit(f"check.py: unknown command {cmd}")
