#!/usr/bin/env bash
# Registers a service instance in the service registry (the registry guide, Method 2), through admin-cli.
#
#   VM_IP=174.138.68.108 EXTERNAL_DOMAIN=llm.mechdna.net SERVICE_ENVIRONMENT=production \
#   SERVICE_NAME=mech-llms SERVICE_PORT=3008 ./scripts/register-service.sh
#
# Registry: SERVICE_REGISTRY_URL (default http://localhost:3013), SERVICE_REGISTRY_TOKEN (X-Registry-Token).
# Instance: VM_IP, EXTERNAL_DOMAIN, SERVICE_NAME, SERVICE_PORT (required); SERVICE_ENVIRONMENT (or
# ENVIRONMENT; default production), SERVICE_REGION (default nyc1), SERVICE_ID (default
# <name>-<environment>-<unix time>), SERVICE_VERSION (default 1.0.0), DEPLOYMENT_ID (default
# manual-registration), SERVICE_CAPABILITIES (comma-separated), HEALTH_CHECK_ENDPOINT (default /health),
# SERVICE_METADATA (a JSON object). ADMIN_CLI: which admin-cli to run.
set -euo pipefail

missing=()
for variable in VM_IP EXTERNAL_DOMAIN SERVICE_NAME SERVICE_PORT; do
  if [[ -z "${!variable:-}" ]]; then missing+=("${variable}"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "[ERROR] set ${missing[*]} (see the header of $0)" >&2
  exit 1
fi

environment="${SERVICE_ENVIRONMENT:-${ENVIRONMENT:-production}}"
service_id="${SERVICE_ID:-${SERVICE_NAME}-${environment}-$(date +%s)}"

# shellcheck source=scripts/lib-admin-cli.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-admin-cli.sh"
admin_cli_command

export SWITCHBOARD_REGISTRY_URL="${SERVICE_REGISTRY_URL:-${SWITCHBOARD_REGISTRY_URL:-http://localhost:3013}}"
if [[ -n "${SERVICE_REGISTRY_TOKEN:-}" ]]; then export SWITCHBOARD_REGISTRY_TOKEN="${SERVICE_REGISTRY_TOKEN}"; fi

options=(
  --service-name "${SERVICE_NAME}"
  --service-id "${service_id}"
  --vm-ip "${VM_IP}"
  --internal-port "${SERVICE_PORT}"
  --external-domain "${EXTERNAL_DOMAIN}"
  --version "${SERVICE_VERSION:-1.0.0}"
  --deployment-id "${DEPLOYMENT_ID:-manual-registration}"
  --environment "${environment}"
  --region "${SERVICE_REGION:-nyc1}"
)
if [[ -n "${SERVICE_CAPABILITIES:-}" ]]; then options+=(--capability "${SERVICE_CAPABILITIES}"); fi
if [[ -n "${HEALTH_CHECK_ENDPOINT:-}" ]]; then options+=(--health-check-endpoint "${HEALTH_CHECK_ENDPOINT}"); fi
if [[ -n "${SERVICE_METADATA:-}" ]]; then options+=(--metadata "${SERVICE_METADATA}"); fi

echo "[INFO] Registering ${SERVICE_NAME} (${service_id}) in ${environment} at ${SWITCHBOARD_REGISTRY_URL}..."
admin_cli services register "${options[@]}" "$@"
