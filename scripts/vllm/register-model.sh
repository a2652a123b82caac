#!/usr/bin/env bash
# Registers a vLLM model deployment in the model registry, after checking that it is healthy
# (the model registration workflow, Method 1):
#
#   ./scripts/vllm/register-model.sh <model> <environment> [namespace] [--force]
#
# Verification: with kubectl and a cluster that answers, the deployment <model>-<environment> in the
# namespace must have ready replicas; otherwise the endpoint must answer GET /health or /v1/models.
# An unhealthy deployment is not registered (exit 1, nothing written) unless --force is given.
#
# Environment: MODEL_ENDPOINT (host:port; default {model}-{environment}.{namespace}.svc.cluster.local:8000),
# SWITCHBOARD_REGISTRY_URL, SWITCHBOARD_REGISTRY_TOKEN (read by admin-cli), ADMIN_CLI (which admin-cli),
# KUBECTL (default kubectl; set it empty to skip Kubernetes).
set -euo pipefail

usage() {
  echo "usage: $0 <model> <environment> [namespace] [--force]" >&2
  echo "  e.g. $0 llama-2-7b development system" >&2
  exit 1
}

info() { echo "[INFO] $*"; }
warn() { echo "[WARN] $*" >&2; }
error() { echo "[ERROR] $*" >&2; }

force=false
args=()
for arg in "$@"; do
  case "${arg}" in
    --force) force=true ;;
    -h | --help) usage ;;
    -*) error "unknown option ${arg}"; usage ;;
    *) args+=("${arg}") ;;
  esac
done
if [[ ${#args[@]} -lt 2 || ${#args[@]} -gt 3 ]]; then usage; fi
model="${args[0]}"
environment="${args[1]}"
namespace="${args[2]:-system}"

# shellcheck source=scripts/lib-admin-cli.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib-admin-cli.sh"
admin_cli_command

selector=(--model-name "${model}" --environment "${environment}" --namespace "${namespace}")
if [[ -n "${MODEL_ENDPOINT:-}" ]]; then selector+=(--endpoint "${MODEL_ENDPOINT}"); fi

# The registry's own dry run validates the arguments and says which endpoint it would register
# (the naming convention unless MODEL_ENDPOINT is set); CSV column 3 is the endpoint.
if ! preview="$(admin_cli registry register "${selector[@]}" --dry-run --format csv)"; then
  error "the registry refused the registration (see above); nothing was registered"
  exit 1
fi
endpoint="$(printf '%s\n' "${preview}" | sed -n '2p' | cut -d, -f3 | tr -d '\r')"

info "Registering model deployment..."
info "  Model: ${model}"
info "  Environment: ${environment}"
info "  Namespace: ${namespace}"
info "  Endpoint: ${endpoint}"
info "Verifying deployment..."

healthy=false
reason=""
kubectl_cmd="${KUBECTL-kubectl}"
deployment="${model}-${environment}"
if [[ -n "${kubectl_cmd}" ]] && command -v "${kubectl_cmd}" >/dev/null 2>&1 &&
  "${kubectl_cmd}" get namespace "${namespace}" --request-timeout=5s >/dev/null 2>&1; then
  if replicas="$("${kubectl_cmd}" get deployment "${deployment}" -n "${namespace}" --request-timeout=10s \
    -o jsonpath='{.status.readyReplicas}/{.spec.replicas}' 2>&1)"; then
    ready="${replicas%%/*}"
    wanted="${replicas##*/}"
    ready="${ready:-0}"
    if [[ "${ready}" -ge 1 ]]; then
      healthy=true
      info "✓ Deployment is healthy (${ready}/${wanted} replicas ready)"
    else
      reason="deployment ${deployment} in namespace ${namespace} has ${ready}/${wanted} replicas ready"
    fi
  else
    reason="kubectl: ${replicas}"
  fi
else
  # No cluster answers: ask the model server itself.
  if check="$(admin_cli registry verify --endpoint "${endpoint}" 2>&1)"; then
    healthy=true
    detail="${check#*is healthy (}"
    info "✓ Deployment is healthy (${endpoint} answers ${detail%)})"
  else
    reason="${check#admin-cli: }"
  fi
fi

if [[ "${healthy}" != true ]]; then
  if [[ "${force}" != true ]]; then
    error "✗ Deployment is not healthy: ${reason}"
    error "Not registering ${model} in ${environment}; fix the deployment, or register anyway with --force"
    exit 1
  fi
  warn "✗ Deployment is not healthy: ${reason}"
  warn "Registering anyway (--force)"
fi

info "Registering model in registry..."
if ! admin_cli registry register "${selector[@]}" --format csv >/dev/null; then
  error "✗ Registration failed (see above)"
  exit 1
fi
info "✓ Model registered successfully"
