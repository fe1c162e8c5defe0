#!/bin/sh
# Container entry point. `web`: migrate, load the bundled prices into an empty database, serve.
set -eu
case "${1:-web}" in
  web)
    archplan db upgrade
    archplan pricing import --bundled --if-empty
    exec archplan serve --host "${ARCHPLAN_HOST:-0.0.0.0}" --port "${ARCHPLAN_PORT:-8000}"
    ;;
  migrate)
    exec archplan db upgrade
    ;;
  *)
    exec archplan "$@"
    ;;
esac
