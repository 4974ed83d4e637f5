#!/usr/bin/env bash
# Install dogmonitor as a systemd service on Raspberry Pi OS, Debian, Ubuntu or JetPack.
#
#   sudo scripts/install.sh                  install or upgrade (idempotent: safe to run again)
#   sudo scripts/install.sh --with-mosquitto also install a local MQTT broker with a password
#   sudo scripts/install.sh --uninstall      remove the service and the program; keep config and data
#   sudo scripts/install.sh --uninstall --purge   … and remove config, data and the user too
#   scripts/install.sh --dry-run [...]       print every step, change nothing (no root needed)
#
# What it does: apt packages (python3-venv …), the system user `dogmonitor` (groups video, audio), a
# virtualenv under /opt/dogmonitor, the models fetched and sha256-verified into /var/lib/dogmonitor/models,
# /etc/dogmonitor/device.env created ONCE from the repository's device.env (never overwritten: your edits
# survive upgrades), the data dir, the unit systemd/dogmonitor.service, `dogmonitor-diag` in
# /usr/local/bin, and the service enabled and (re)started.
#
# Paths can be moved for testing with DOGMON_PREFIX, DOGMON_ETC_DIR, DOGMON_STATE_DIR, DOGMON_UNIT_DIR,
# DOGMON_BIN_DIR. DOGMON_MIRROR=/folder (holding models/ and media/) fetches models from a local copy.
set -euo pipefail
umask 022  # the program must be readable by the service user whatever root's umask is

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${DOGMON_PREFIX:-/opt/dogmonitor}"
ETC_DIR="${DOGMON_ETC_DIR:-/etc/dogmonitor}"
STATE_DIR="${DOGMON_STATE_DIR:-/var/lib/dogmonitor}"
UNIT_DIR="${DOGMON_UNIT_DIR:-/etc/systemd/system}"
BIN_DIR="${DOGMON_BIN_DIR:-/usr/local/bin}"
SERVICE_USER=dogmonitor
# The distribution's interpreter: one in a user's home (pyenv …) is unreadable for the service user.
PYTHON="${DOGMON_PYTHON:-/usr/bin/python3}"
UNIT=dogmonitor.service
MOSQUITTO_CONF=/etc/mosquitto/conf.d/dogmonitor.conf
MOSQUITTO_PASSWD=/etc/mosquitto/dogmonitor.passwd

DRY_RUN=0 UNINSTALL=0 PURGE=0 WITH_MOSQUITTO=0 START=1

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  echo "Options: --dry-run --with-mosquitto --uninstall --purge --no-start -h|--help"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --with-mosquitto) WITH_MOSQUITTO=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    --no-start) START=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
  echo "install.sh: --purge only goes with --uninstall" >&2; exit 2
fi
if [ "$UNINSTALL" = 1 ] && [ "$WITH_MOSQUITTO" = 1 ]; then
  echo "install.sh: --with-mosquitto does not go with --uninstall (the broker is never removed)" >&2; exit 2
fi

step() { echo "==> $*"; }
# run CMD…: print it; execute it unless this is a dry run.
run() {
  echo "+ $*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}
# as_user CMD…: run as the service user (it owns the state directory).
as_user() {
  if [ "$(id -u)" = 0 ]; then run runuser -u "$SERVICE_USER" -- "$@"; else run "$@"; fi
}
have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo $0 $*), or with --dry-run to see the steps" >&2; exit 1
fi
[ "$DRY_RUN" = 1 ] && echo "(dry run: nothing is changed)"

uninstall() {
  step "stopping and removing the service"
  if have_systemd; then
    run systemctl disable --now "$UNIT" || true
  fi
  run rm -f "$UNIT_DIR/$UNIT"
  if have_systemd; then run systemctl daemon-reload; fi
  step "removing the program"
  run rm -rf "$PREFIX"
  run rm -f "$BIN_DIR/dogmonitor-diag"
  if [ "$PURGE" = 1 ]; then
    step "purging configuration, data and the user"
    run rm -rf "$ETC_DIR" "$STATE_DIR"
    if id "$SERVICE_USER" >/dev/null 2>&1 || [ "$DRY_RUN" = 1 ]; then run userdel "$SERVICE_USER" || true; fi
    if [ -f "$MOSQUITTO_CONF" ]; then
      echo "note: the local broker (mosquitto) is left installed; remove $MOSQUITTO_CONF if it is no longer needed"
    fi
  else
    echo "kept: $ETC_DIR (configuration) and $STATE_DIR (events, zones, models); --purge removes them"
  fi
  step "dogmonitor uninstalled"
}

install_packages() {
  step "system packages"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: apt-get not found: this script supports Raspberry Pi OS, Debian, Ubuntu and JetPack" >&2
    exit 1
  fi
  local packages="python3 python3-venv python3-pip ca-certificates"
  [ "$WITH_MOSQUITTO" = 1 ] && packages="$packages mosquitto mosquitto-clients"
  run apt-get update -qq
  # shellcheck disable=SC2086
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages
}

create_user() {
  step "service user '$SERVICE_USER' (groups: video, audio)"
  if id "$SERVICE_USER" >/dev/null 2>&1; then
    echo "exists: user $SERVICE_USER"
    run usermod -a -G video,audio "$SERVICE_USER"
  else
    run useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
      --groups video,audio "$SERVICE_USER"
  fi
}

install_program() {
  step "program: $PREFIX/app (source) and a virtualenv in $PREFIX/venv"
  # A fresh copy each time (upgrade = run again); installed editable so the model manifests in
  # $PREFIX/app/models are found next to the package.
  run install -d -m 0755 "$PREFIX"
  run rm -rf "$PREFIX/app.new"
  run mkdir -p "$PREFIX/app.new"
  run cp -a "$SRC/edge" "$SRC/models" "$SRC/systemd" "$SRC/scripts" "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/docs" \
    "$SRC/device.env" "$PREFIX/app.new/"
  run rm -rf "$PREFIX/app"
  run mv "$PREFIX/app.new" "$PREFIX/app"
  if [ -x "$PREFIX/venv/bin/python" ] && [ "$(readlink -f "$PREFIX/venv/bin/python")" = "$(readlink -f "$PYTHON")" ]; then
    echo "exists: $PREFIX/venv"
  else
    run rm -rf "$PREFIX/venv"
    run "$PYTHON" -m venv "$PREFIX/venv"
  fi
  run "$PREFIX/venv/bin/python" -m pip install --quiet --upgrade pip
  run "$PREFIX/venv/bin/python" -m pip install --quiet -e "$PREFIX/app"
  run install -m 0755 "$SRC/scripts/dogmonitor-diag" "$BIN_DIR/dogmonitor-diag"
}

write_config() {
  step "configuration $ETC_DIR/device.env"
  run install -d -m 0750 "$ETC_DIR"
  if [ -f "$ETC_DIR/device.env" ]; then
    echo "kept: $ETC_DIR/device.env (never overwritten; compare with $SRC/device.env for new keys)"
    if [ -n "${MQTT_PASSWORD:-}" ]; then
      echo "note: a new broker password was made; set in $ETC_DIR/device.env:"
      echo "      DOGMON_MQTT_URL=mqtt://dogmonitor:$MQTT_PASSWORD@127.0.0.1:1883"
    fi
    return
  fi
  local mqtt_url=""
  if [ "$WITH_MOSQUITTO" = 1 ]; then mqtt_url="mqtt://dogmonitor:${MQTT_PASSWORD:-PASSWORD}@127.0.0.1:1883"; fi
  # The camera must not be open to the whole LAN: a fresh install gets its own WebSocket/HTTP token.
  local ws_token
  ws_token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  echo "+ create $ETC_DIR/device.env from $SRC/device.env (models and data under $STATE_DIR, a new DOGMON_WS_TOKEN)"
  if [ "$DRY_RUN" = 0 ]; then
    sed -e "s#^DOGMON_MODEL_DIR=.*#DOGMON_MODEL_DIR=$STATE_DIR/models#" \
        -e "s#^DOGMON_WS_TOKEN=.*#DOGMON_WS_TOKEN=$ws_token#" \
        -e "s#^DOGMON_DATA_DIR=.*#DOGMON_DATA_DIR=$STATE_DIR/data#" \
        -e "s#^DOGMON_MQTT_URL=.*#DOGMON_MQTT_URL=$mqtt_url#" \
        "$SRC/device.env" > "$ETC_DIR/device.env.new"
    chmod 0640 "$ETC_DIR/device.env.new"
    chgrp "$SERVICE_USER" "$ETC_DIR/device.env.new" "$ETC_DIR"
    mv "$ETC_DIR/device.env.new" "$ETC_DIR/device.env"
  fi
}

state_dirs() {
  step "data directory $STATE_DIR"
  run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR" "$STATE_DIR/data" "$STATE_DIR/models"
}

fetch_models() {
  step "models: fetched and sha256-verified into $STATE_DIR/models"
  local mirror_env=()
  [ -n "${DOGMON_MIRROR:-}" ] && mirror_env=(env "DOGMON_MIRROR=$DOGMON_MIRROR")
  as_user "${mirror_env[@]}" "$PREFIX/venv/bin/dogmonitor" --env "$ETC_DIR/device.env" fetch-models
  as_user "$PREFIX/venv/bin/dogmonitor" --env "$ETC_DIR/device.env" check-config >/dev/null
}

setup_mosquitto() {
  step "local MQTT broker (mosquitto) with a password"
  if [ -f "$MOSQUITTO_CONF" ]; then
    echo "kept: $MOSQUITTO_CONF"
  else
    echo "+ write $MOSQUITTO_CONF (listener 1883, no anonymous access)"
    if [ "$DRY_RUN" = 0 ]; then
      printf 'listener 1883\nallow_anonymous false\npassword_file %s\n' "$MOSQUITTO_PASSWD" > "$MOSQUITTO_CONF"
    fi
  fi
  if [ ! -f "$MOSQUITTO_PASSWD" ] || [ "$DRY_RUN" = 1 ]; then
    MQTT_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    echo "+ mosquitto_passwd -b $MOSQUITTO_PASSWD dogmonitor ********"
    if [ "$DRY_RUN" = 0 ]; then
      touch "$MOSQUITTO_PASSWD" && chmod 0640 "$MOSQUITTO_PASSWD"
      mosquitto_passwd -b "$MOSQUITTO_PASSWD" dogmonitor "$MQTT_PASSWORD"
      chown root:mosquitto "$MOSQUITTO_PASSWD" 2>/dev/null || true
    fi
    echo "note: add a user for Home Assistant with: sudo mosquitto_passwd $MOSQUITTO_PASSWD homeassistant"
  else
    echo "kept: $MOSQUITTO_PASSWD"
  fi
  if have_systemd; then run systemctl enable mosquitto; run systemctl restart mosquitto; fi
}

install_unit() {
  step "systemd unit $UNIT_DIR/$UNIT"
  run install -m 0644 "$SRC/systemd/$UNIT" "$UNIT_DIR/$UNIT"
  if have_systemd || [ "$DRY_RUN" = 1 ]; then
    run systemctl daemon-reload
    if [ "$START" = 1 ]; then
      run systemctl enable "$UNIT"
      run systemctl restart "$UNIT"
    else
      echo "not started (--no-start): sudo systemctl enable --now $UNIT"
    fi
  else
    echo "note: systemd is not running here; start the service on the device with: sudo systemctl enable --now $UNIT"
  fi
}

if [ "$UNINSTALL" = 1 ]; then
  uninstall
  exit 0
fi

install_packages
create_user
install_program
[ "$WITH_MOSQUITTO" = 1 ] && setup_mosquitto
state_dirs
write_config
fetch_models
install_unit
step "done"
echo "status:      systemctl status $UNIT    logs: journalctl -u $UNIT -f"
echo "diagnostics: dogmonitor-diag            config: $ETC_DIR/device.env (then: sudo systemctl restart $UNIT)"
