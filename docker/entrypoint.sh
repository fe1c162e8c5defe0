#!/bin/sh
# Container entry point.
#   web      migrate, load the bundled prices into an empty database, serve (uvicorn).
#            ARCHPLAN_MIGRATE_ON_START=false skips the first two steps, for deployments
#            that migrate in a separate step (the Helm chart's migration Job).
#   worker   run the solve worker (`archplan worker`); further arguments go to it.
#   migrate  apply the database migrations and exit.
#   ...      anything else runs `archplan ...`.
set -eu
case "${1:-web}" in
  web)
    if [ "${ARCHPLAN_MIGRATE_ON_START:-true}" != "false" ]; then
      archplan db upgrade
      archplan pricing import --bundled --if-empty
    fi
    exec archplan serve --host "${ARCHPLAN_HOST:-0.0.0.0}" --port "${ARCHPLAN_PORT:-8000}"
    ;;
  worker)
    shift
    exec archplan worker "$@"
    ;;
  migrate)
    exec archplan db upgrade
    ;;
  *)
    exec archplan "$@"
    ;;
esac
