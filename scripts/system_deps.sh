#!/bin/sh
# Install the Debian packages named in $DEBS that are missing. As root it installs them;
# otherwise it prints the exact command to run and goes on.
missing=""
for deb in $DEBS; do
  dpkg -s "$deb" >/dev/null 2>&1 || missing="$missing $deb"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "Missing system packages:$missing"
  echo "Install them with: sudo apt-get update && sudo apt-get install -y$missing"
fi
