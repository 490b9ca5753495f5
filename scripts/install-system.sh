#!/usr/bin/env bash
# System packages the local stack needs, from Debian: Redis, Java + Maven for the Kafka broker,
# Prometheus (server and promtool) and Alertmanager's amtool for the monitoring/ checks, Chromium
# for the UI's browser tests, PostgreSQL for MLflow under `rtml up --profile cluster` (tests/cluster).
# Idempotent: installs only what is missing. Run as root, or with sudo available.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)   # the UI's end-to-end tests (playwright-core)
# Debian keeps initdb and postgres in /usr/lib/postgresql/<major>/bin, off PATH (rtml looks there).
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "rtml needs: ${need[*]} — install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "rtml needs root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian enables and starts a system-wide Prometheus (port 9090), Alertmanager (9093, which
# is Kafka's controller port here) and PostgreSQL (5432). rtml runs its own from the state folder,
# so the services that this script just installed are stopped and disabled; existing ones are
# left alone.
for unit in prometheus prometheus-alertmanager postgresql; do
  case " ${need[*]} " in *" $unit "*) ;; *) continue ;; esac
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$unit" ]; then
    $sudo "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
  fi
done
