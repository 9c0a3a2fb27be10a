#!/bin/sh
# The test suite, run inside a container on the project network: each check prints ok/FAIL,
# and the exit status is the number of failures (0: all passed).
fails=0
check() {
  name=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
page=$(timeout 10 wget -qO- http://web/ 2>/dev/null)
check "web resolves by service name" nslookup web
check "the home page answers" test -n "$page"
check "the home page has the title" sh -c "echo '$page' | grep -q 'rcompose CI demo'"
check "the health endpoint says ok" sh -c 'test "$(timeout 10 wget -qO- http://web/health)" = ok'
check "a missing page is a 404" sh -c 'timeout 10 wget -qO- http://web/missing 2>&1 | grep -q 404'
echo "$fails failed"
exit "$fails"
