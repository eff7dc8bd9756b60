#!/usr/bin/env bash
# Checks everything in deploy/ (tests/run calls it; docs/deploy.md lists what it proves):
#   the image     hadolint; builds only through deploy/build.sh with the tests' toolchain;
#                 deploy/build.sh --profile dev runs, its owl passes `policy check` on
#                 every rendered policy, serves, answers the image's HEALTHCHECK
#                 (owl-healthcheck: /healthz 200 → 0, /readyz 503 → 1) and exits 0 on SIGTERM
#   the chart     helm lint --strict; renders exactly deploy/manifests/owl.yaml; every
#                 variant validates against Kubernetes' schemas (1.30 and 1.37, strict)
#                 and keeps its invariants (check.py rendered); bad values are refused
#   nginx         the snippets pass `nginx -t` inside a server block like OpenWhisk's
#   systemd       systemd-analyze verify is silent; security exposure ≤ 2.0
#   IAM           check.py iam (JSON, least privilege, parliament)
#   scripts       shellcheck; rustfmt --check of the health check
# Usage: deploy/check.sh            check (tools from deploy/check-tools.sh)
#        deploy/check.sh --update   re-render deploy/manifests/owl.yaml, then check
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${OWL_TOOLS:-$ROOT/.owl}
VENV=$TOOLS/deploy-venv
HELM=$TOOLS/deploy-bin/helm
PY=$VENV/bin/python
[ -x "$HELM" ] && [ -x "$PY" ] || deploy/check-tools.sh >/dev/null
for tool in nginx systemd-analyze rustc rustfmt; do
  command -v "$tool" >/dev/null || { echo "check.sh: $tool is missing (tests/run installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
owl_pid=""
# shellcheck disable=SC2329  # called by the trap
cleanup() {
  if [ -n "$owl_pid" ]; then kill -KILL "$owl_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf -- '-- %s\n' "$*"; }
failed=0
bad() { echo "  FAIL $*"; failed=1; }
# run LABEL COMMAND...: ok when the command succeeds, else its output and a failure.
run() {
  local label=$1; shift
  if "$@" > "$work/out" 2>&1; then echo "  ok   $label"; else cat "$work/out"; bad "$label"; fi
}

CHART=deploy/helm/owl
MANIFESTS=deploy/manifests/owl.yaml
render_manifests() {
  printf '# Rendered from deploy/helm/owl with deploy/manifests/values.yaml; do not edit by hand:\n'
  printf '# deploy/check.sh --update re-renders it (deploy/check.sh fails when it is stale).\n'
  printf '#   helm template owl deploy/helm/owl --namespace openwhisk -f deploy/manifests/values.yaml\n'
  "$HELM" template owl "$CHART" --namespace openwhisk -f deploy/manifests/values.yaml
}
if [ "${1:-}" = --update ]; then
  render_manifests > "$MANIFESTS"
  echo "wrote $MANIFESTS"
fi

step "Dockerfile: hadolint, build command"
run "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" deploy/Dockerfile
"$PY" deploy/check.py dockerfile || failed=1

step "scripts: shellcheck, rustfmt"
run "shellcheck deploy/*.sh" "$VENV/bin/shellcheck" deploy/build.sh deploy/check.sh deploy/check-tools.sh
run "rustfmt deploy/healthcheck/healthcheck.rs" rustfmt --edition 2021 --check deploy/healthcheck/healthcheck.rs

step "the image's build: deploy/build.sh --profile dev"
deploy/build.sh --profile dev --out "$work/bin" > "$work/build.log" 2>&1 || { cat "$work/build.log"; bad "deploy/build.sh"; exit 1; }
OWL=$work/bin/owl
cargo_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
app_version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$CHART/Chart.yaml")
owl_version=$("$OWL" --version | awk '{print $2}')
if [ "$cargo_version" = "$app_version" ] && [ "$owl_version" = "$cargo_version" ]; then
  echo "  ok   owl --version = Cargo.toml = Chart appVersion = $owl_version"
else
  bad "versions differ: owl $owl_version, Cargo.toml $cargo_version, Chart appVersion $app_version"
fi

step "the image's process: owl serve, owl-healthcheck, SIGTERM"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/smoke.toml" <<EOF
[controller]
url = "http://127.0.0.1:9"
connect_timeout = "1s"
[lambda]
region = "eu-west-1"
[activations]
data_dir = "$work/data"
[server]
shutdown_delay = "1s"
drain_timeout = "2s"
EOF
OWL_LISTEN=127.0.0.1:$port OWL_ADMIN_LISTEN=127.0.0.1:$admin_port OWL_POLICY=$work/smoke.toml "$OWL" serve > "$work/owl.log" 2>&1 &
owl_pid=$!
healthy=0
for _ in $(seq 1 100); do
  if OWL_LISTEN=127.0.0.1:$port "$work/bin/owl-healthcheck" 2>/dev/null; then healthy=1; break; fi
  sleep 0.1
done
if [ $healthy = 1 ]; then echo "  ok   owl-healthcheck /healthz → 0"; else cat "$work/owl.log"; bad "owl-healthcheck /healthz"; fi
# The controller is unreachable: readiness is 503, and the health check must say so.
if OWL_LISTEN=0.0.0.0:$port OWL_ADMIN_LISTEN=127.0.0.1:$admin_port "$work/bin/owl-healthcheck" /readyz 2>/dev/null; then
  bad "owl-healthcheck /readyz succeeded with no controller"
else
  echo "  ok   owl-healthcheck /readyz (no controller) → 1"
fi
kill -TERM "$owl_pid"
rc=0
wait "$owl_pid" || rc=$?
owl_pid=""
if [ $rc = 0 ]; then echo "  ok   SIGTERM → drained, exit 0"; else cat "$work/owl.log"; bad "owl exited $rc after SIGTERM"; fi

step "Helm chart: lint, committed manifests, variants"
run "helm lint --strict" "$HELM" lint --strict "$CHART" -f deploy/manifests/values.yaml
render_manifests > "$work/owl.yaml"
if diff -u "$MANIFESTS" "$work/owl.yaml" > "$work/manifests.diff"; then
  echo "  ok   $MANIFESTS is exactly what the chart renders"
else
  head -40 "$work/manifests.diff"
  bad "$MANIFESTS differs from the chart's rendering: run deploy/check.sh --update"
fi
for k in 1.30.0 1.37.0; do
  run "$MANIFESTS: Kubernetes $k schemas (strict)" "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$MANIFESTS"
done
variants=(
  "manifests|-f deploy/manifests/values.yaml"
  "defaults|--set lambda.region=us-east-1"
  "local|--set lambda.region=us-east-1 --set throttles.backend=local --set activations.store=embedded --set autoscaling.enabled=false --set podDisruptionBudget.enabled=false --set shutdown.preStopSleepSeconds=0 --set serviceAccount.annotations.team=edge --set otel.endpoint=http://otel-collector.observability:4318 --set otel.sampler=parentbased_traceidratio --set otel.samplerArg=0.1 --set policy.restartOnChange=true --set shutdown.terminationGracePeriodSeconds=120 --set throttles.invocationsPerMinute=600"
  "secret|--set lambda.region=us-east-1 --set policy.existingSecret=owl-policy --set aws.roleArn=arn:aws:iam::123456789012:role/owl-gateway"
  "full|--set lambda.region=us-east-1 --set-file policy.full=policies/example.toml --set activations.store=embedded"
)
for v in "${variants[@]}"; do
  name=${v%%|*}
  read -r -a args <<< "${v#*|}"
  out=$work/variant-$name.yaml
  if ! "$HELM" template owl "$CHART" --namespace openwhisk "${args[@]}" > "$out" 2> "$work/err"; then
    cat "$work/err"; bad "helm template ($name)"; continue
  fi
  for k in 1.30.0 1.37.0; do
    run "$name: Kubernetes $k schemas (strict)" "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$out"
  done
  if [ "$name" = full ]; then
    # A whole policy of the user's: only the pod's side is checked.
    "$PY" - "$out" <<'PY' || bad "full: policy.full is not what the ConfigMap carries"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = [d for d in docs if d["kind"] == "ConfigMap"][0]
sys.exit(cm["data"]["policy.toml"].strip() != open("policies/example.toml").read().strip())
PY
    continue
  fi
  "$PY" deploy/check.py rendered "$out" "$work/policy-$name.toml" || failed=1
  if [ -f "$work/policy-$name.toml" ]; then
    run "$name: owl policy check" "$OWL" policy check "$work/policy-$name.toml"
  fi
done
# The manifests' example route is a rollback-safe canary: weight 0 → the controller.
# Captured first: grep -q would close the pipe while owl still writes, and pipefail
# would report owl's broken pipe rather than what it printed.
explained=$("$OWL" policy explain "$work/policy-manifests.toml" guest/hello 2>&1 || true)
if grep -q "100% to the controller" <<< "$explained"; then
  echo "  ok   manifests: guest/hello goes to the controller (weight 0)"
else
  printf '%s\n' "$explained"
  bad "manifests: owl policy explain guest/hello does not say 100% to the controller"
fi
# Values the chart must refuse.
refuse() {
  local what=$1; shift
  if "$HELM" template owl "$CHART" "$@" > /dev/null 2>&1; then bad "the chart accepted $what"; else echo "  ok   refused: $what"; fi
}
refuse "no lambda.region"
refuse "a grace period shorter than the drain" --set lambda.region=us-east-1 --set shutdown.terminationGracePeriodSeconds=30
refuse "throttles.backend=redis without redisUrl" --set lambda.region=us-east-1 --set throttles.redisUrl=

step "nginx: the snippets in a server like OpenWhisk's"
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
  access_log off;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  include $ROOT/deploy/nginx/owl-upstream.conf;
  server {
    listen 127.0.0.1:8443;
    server_name ~^(?<namespace>[0-9a-zA-Z-]+)\.openwhisk\.example\.com\$;
    include $ROOT/deploy/nginx/owl-locations.conf;
    location / { return 404; }
  }
}
EOF
run "nginx -t" nginx -t -q -c "$work/nginx/nginx.conf" -p "$work/nginx"

step "systemd: deploy/systemd/owl.service"
mkdir -p "$work/systemd"
sed "s#/usr/local/bin/owl#$OWL#" deploy/systemd/owl.service > "$work/systemd/owl.service"
systemd-analyze verify "$work/systemd/owl.service" > "$work/err" 2>&1 || true
if [ -s "$work/err" ]; then cat "$work/err"; bad "systemd-analyze verify"; else echo "  ok   systemd-analyze verify (no warnings)"; fi
if systemd-analyze security --offline=yes --threshold=20 "$work/systemd/owl.service" > "$work/err" 2>&1; then
  echo "  ok   systemd-analyze security: $(grep -o 'exposure level.*' "$work/err" | head -1)"
else
  tail -3 "$work/err"; bad "systemd-analyze security: exposure above 2.0"
fi

step "IAM documents"
"$PY" deploy/check.py iam deploy/iam || failed=1

if [ $failed = 0 ]; then echo "deploy/check.sh: all checks passed"; else echo "deploy/check.sh: FAILED"; fi
exit $failed
