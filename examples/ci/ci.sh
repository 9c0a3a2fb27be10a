#!/usr/bin/env bash
# What a CI job runs (the Jenkinsfile calls it): build the images, bring the stack up and wait
# until it is healthy, run the test suite in a container twice (`run --rm`, then
# `up --exit-code-from`), and always tear everything down, also when a step fails or the job is
# aborted. Output is plain lines, fit for a CI log without a terminal.
#
#   examples/ci/ci.sh                      # rcompose from PATH, project ci-local
#   RCOMPOSE=/path/to/rcompose CI_PROJECT=ci-42 examples/ci/ci.sh
# Exit status: 0 when every test passed, else the failing step's status.
set -euo pipefail
cd "$(dirname "$0")"

RCOMPOSE=${RCOMPOSE:-rcompose}
export COMPOSE_PROJECT_NAME=${CI_PROJECT:-ci-${BUILD_NUMBER:-local}}
export CI_TAG=${BUILD_NUMBER:-dev}

rc() { "$RCOMPOSE" --progress plain --ansi never "$@"; }

teardown() {
  local status=$?
  echo "--- tear down (status $status)"
  rc --profile test down -v --remove-orphans -t 5 || echo "tear down failed" >&2
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "--- build"
rc build
echo "--- up --wait"
rc up -d --wait
echo "--- smoke from the host"
curl -fsS "http://127.0.0.1:${CI_WEB_PORT:-8090}/" | grep -q "rcompose CI demo"
echo "ok   published port answers"
echo "--- tests: run --rm"
rc --profile test run --rm -T tests
echo "--- tests: up --exit-code-from"
rc --profile test up --exit-code-from tests tests
echo "--- all tests passed"
