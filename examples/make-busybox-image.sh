#!/bin/sh
# Makes the `busybox:local` image the examples use: a FROM-scratch root filesystem around
# Debian's static busybox (apt install busybox-static), imported into rcompose's image store.
# Usage: examples/make-busybox-image.sh [rcompose binary]   (pass --root via RCOMPOSE_ROOT)
set -eu
RC=${1:-rcompose}
FS=$(mktemp -d /tmp/busybox-rootfs.XXXXXX)
trap 'case "$FS" in /tmp/busybox-rootfs.*) rm -rf "$FS" ;; esac' EXIT
mkdir -p "$FS/bin" "$FS/etc" "$FS/tmp" "$FS/www"
cp /bin/busybox "$FS/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$FS/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$FS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$FS/etc/group"
"$RC" image import "$FS" busybox:local -c 'CMD ["sh"]' -c 'ENV PATH=/bin'
