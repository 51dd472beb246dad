#!/bin/sh
# azd postprovision hook. Runs on the deploying machine with the deployer's Azure login.
# Optional steps, each switched on with `azd env set NAME true`:
#   ENABLE_DATAVERSE_SCHEMA  create Tillbridge's Dataverse columns and keys (needs System Customizer)
#   REGISTER_SQUARE_WEBHOOK  create/update the Square webhook subscription and store its key in Key Vault
# Secrets given as azd environment values are copied into Key Vault (never into app settings):
#   SQUARE_ACCESS_TOKEN, DATAVERSE_CLIENT_SECRET
set -eu
cd "$(dirname "$0")/../.."

wants_tools=false
for flag in "${ENABLE_DATAVERSE_SCHEMA:-false}" "${REGISTER_SQUARE_WEBHOOK:-false}"; do
  [ "$flag" = "true" ] && wants_tools=true
done
[ -n "${SQUARE_ACCESS_TOKEN:-}${DATAVERSE_CLIENT_SECRET:-}" ] && wants_tools=true
if [ "$wants_tools" = "false" ]; then
  echo "postprovision: nothing to do (see infra/scripts/postprovision.sh for the optional steps)"
  exit 0
fi

python3 -m venv .venv-ops
.venv-ops/bin/pip install --quiet -r requirements-dev.txt
.venv-ops/bin/pip install --quiet --no-deps -e .
tb=".venv-ops/bin/tillbridge"

if [ -n "${SQUARE_ACCESS_TOKEN:-}" ]; then
  "$tb" secret set --vault "$AZURE_KEY_VAULT_NAME" --name square-access-token --from-env SQUARE_ACCESS_TOKEN
fi
if [ -n "${DATAVERSE_CLIENT_SECRET:-}" ]; then
  "$tb" secret set --vault "$AZURE_KEY_VAULT_NAME" --name dataverse-client-secret --from-env DATAVERSE_CLIENT_SECRET
fi
if [ "${ENABLE_DATAVERSE_SCHEMA:-false}" = "true" ]; then
  DATAVERSE_AUTH="${DATAVERSE_AUTH:-managed_identity}" "$tb" schema apply --azure-cli
fi
if [ "${REGISTER_SQUARE_WEBHOOK:-false}" = "true" ]; then
  : "${SQUARE_ACCESS_TOKEN:?set SQUARE_ACCESS_TOKEN (the application's personal access token): azd env set SQUARE_ACCESS_TOKEN ...}"
  if [ "${SQUARE_ENVIRONMENT:-sandbox}" = "production" ]; then
    SQUARE_BASE_URL=https://connect.squareup.com
  else
    SQUARE_BASE_URL=https://connect.squareupsandbox.com
  fi
  export SQUARE_BASE_URL
  "$tb" square register-webhook --url "$SQUARE_WEBHOOK_URL" --vault "$AZURE_KEY_VAULT_NAME"
fi
