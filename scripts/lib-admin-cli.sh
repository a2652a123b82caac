# shellcheck shell=bash
# Sourced by the registration scripts: finds admin-cli, the one client of the registry they use.
# Order: $ADMIN_CLI (a path or command), `admin-cli` on PATH, this repository's launcher.

admin_cli_command() {
  if [[ -n "${ADMIN_CLI:-}" ]]; then
    # shellcheck disable=SC2206 # ADMIN_CLI may hold a command with arguments, e.g. "node /x/main.js".
    ADMIN_CLI_CMD=(${ADMIN_CLI})
  elif command -v admin-cli >/dev/null 2>&1; then
    ADMIN_CLI_CMD=(admin-cli)
  else
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [[ ! -f "${repo}/tools/scripts/admin-cli.mjs" ]]; then
      echo "[ERROR] admin-cli not found: put it on PATH or set ADMIN_CLI" >&2
      return 1
    fi
    ADMIN_CLI_CMD=(node "${repo}/tools/scripts/admin-cli.mjs")
  fi
}

admin_cli() {
  "${ADMIN_CLI_CMD[@]}" "$@"
}
