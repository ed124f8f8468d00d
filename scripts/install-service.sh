#!/bin/sh
# Install riskd as a systemd service under its own user, so that the trader's login can neither
# stop it nor edit its config or database. Run as root from the repository:
#
#   sudo scripts/install-service.sh [--prefix /opt/riskd] [--config-dir /etc/riskd]
#                                   [--state-dir /var/lib/riskd] [--trader USER]
#
# Layout it creates (see docs/security.md):
#   /opt/riskd            virtualenv with riskd (root-owned, read-only for everyone else)
#   /etc/riskd/riskd.yaml config      riskd:riskd-read 0640 (dir 2750): riskd writes it (rules set),
#                                     the trader (in group riskd-read) may read it
#   /etc/riskd/secrets/   API key     riskd:riskd 0700/0600: only riskd
#   /var/lib/riskd/       DB, logs    riskd:riskd-read 2750; admin.argon2 0600 riskd only
# The trader reads status through the loopback admin port (risk-trader) and the database
# read-only. The admin password is set with `sudo -u riskd riskd passwd`.
set -eu

PREFIX=/opt/riskd
CONFIG_DIR=/etc/riskd
STATE_DIR=/var/lib/riskd
TRADER=""
SRC=$(cd "$(dirname "$0")/.." && pwd)

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=$2; shift 2 ;;
        --config-dir) CONFIG_DIR=$2; shift 2 ;;
        --state-dir) STATE_DIR=$2; shift 2 ;;
        --trader) TRADER=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install-service.sh: unknown option $1 (allowed: --prefix, --config-dir," \
                "--state-dir, --trader)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install-service.sh: run as root (it creates a user and a systemd unit)" >&2
    exit 1
fi
PY=$(command -v python3.12 || true)
[ -n "$PY" ] || { echo "install-service.sh: python3.12 not found on PATH" >&2; exit 1; }

getent group riskd-read >/dev/null || groupadd --system riskd-read
id riskd >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin \
    --user-group riskd
if [ -n "$TRADER" ]; then
    usermod -a -G riskd-read "$TRADER"
fi

# code: root-owned, nobody else can change what runs as riskd
"$PY" -m venv "$PREFIX"
"$PREFIX/bin/pip" install -q "$SRC"
chown -R root:root "$PREFIX"
chmod -R go-w "$PREFIX"

install -d -o riskd -g riskd-read -m 2750 "$CONFIG_DIR"
install -d -o riskd -g riskd -m 0700 "$CONFIG_DIR/secrets"
install -d -o riskd -g riskd-read -m 2750 "$STATE_DIR"
if [ ! -f "$CONFIG_DIR/riskd.yaml" ]; then
    sed "s#^  state_dir: .*#  state_dir: $STATE_DIR#" "$SRC/etc/riskd.yaml" > "$CONFIG_DIR/riskd.yaml"
fi
chown riskd:riskd-read "$CONFIG_DIR/riskd.yaml"
chmod 0640 "$CONFIG_DIR/riskd.yaml"

sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@CONFIG@#$CONFIG_DIR/riskd.yaml#g" \
    -e "s#@CONFIG_DIR@#$CONFIG_DIR#g" -e "s#@STATE@#$STATE_DIR#g" \
    "$SRC/etc/systemd/riskd.service" > /etc/systemd/system/riskd.service
systemctl daemon-reload
systemctl enable riskd.service

cat <<MSG
riskd installed as a service (user riskd).
Next, as root:
  edit $CONFIG_DIR/riskd.yaml (accounts, rules), put the API key in $CONFIG_DIR/secrets/api_key
    (chown riskd, chmod 600) and set api_key_file: secrets/api_key
  sudo -u riskd $PREFIX/bin/riskd passwd --config $CONFIG_DIR/riskd.yaml
  systemctl start riskd
The trader runs: $PREFIX/bin/risk-trader status --config $CONFIG_DIR/riskd.yaml
MSG
