# The local test node: this machine, managed by the panel over SSH on loopback.
# Sourced by scripts/test (after common.sh); do not run it.

NODE_TEST_PACKAGES=(
  openssh-server nginx
  php8.2-fpm php8.2-cli php8.2-mysql php8.2-redis php8.2-xml php8.2-mbstring php8.2-curl
  php8.2-zip php8.2-gd php8.2-intl
  mariadb-server mariadb-client redis-server rsync git openssh-client
  fail2ban nftables certbot python3-certbot-dns-rfc2136 restic
  wordpress wordpress-theme-twentytwentythree
)

# Daemons node_provision starts when they are not running: name and pid file
# (the paths apps/nodes/remote/services.py uses without systemd).
NODE_DAEMONS=(
  "nginx:/run/nginx.pid"
  "php-fpm:/run/php/php8.2-fpm.pid"
  "mariadb:/run/mysqld/mysqld.pid"
  "redis:/run/redis/redis-server.pid"
  "fail2ban:/run/fail2ban/fail2ban.pid"
)

install_node_packages() {
  # The same list provision.py installs, so its apt step finds nothing to do
  # here, plus what the tests themselves use (sshd, WordPress from Debian).
  apt_install "${NODE_TEST_PACKAGES[@]}"
}

pid_from_file() {
  # pid_from_file FILE : the pid in FILE if that process is alive, else nothing.
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop_by_pid_file() {
  # stop_by_pid_file FILE NAME : TERM, up to 20 s to exit, then KILL.
  local file="$1" name="$2" pid waited=0
  pid="$(pid_from_file "$file")" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= 200 )); then
      log "$name did not stop in 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

NODE_DAEMONS_RUNNING_BEFORE=""

note_running_node_daemons() {
  # Remembered so that only what this run started is stopped at its end: on a
  # machine in use the node's services belong to someone else.
  local entry
  NODE_DAEMONS_RUNNING_BEFORE=""
  for entry in "${NODE_DAEMONS[@]}"; do
    pid_from_file "${entry#*:}" >/dev/null && NODE_DAEMONS_RUNNING_BEFORE+=" ${entry%%:*}"
  done
  [ -z "$NODE_DAEMONS_RUNNING_BEFORE" ] || log "already running, left alone at exit:$NODE_DAEMONS_RUNNING_BEFORE"
}

stop_started_node_daemons() {
  local entry name
  # Several test runs in one machine's worktrees share the node's services.
  [ -z "${PRESSLUFT_KEEP_NODE_DAEMONS:-}" ] || return 0
  for entry in "${NODE_DAEMONS[@]}"; do
    name="${entry%%:*}"
    [[ " $NODE_DAEMONS_RUNNING_BEFORE " == *" $name "* ]] && continue
    stop_by_pid_file "${entry#*:}" "$name"
  done
}

# start_test_sshd DIR PORT : an sshd for the panel on 127.0.0.1:PORT with its
# own host key, pid file and authorized_keys file (written by the tests), key
# authentication only. Exports PRESSLUFT_TEST_SSH_PORT,
# PRESSLUFT_TEST_AUTHORIZED_KEYS and PRESSLUFT_TEST_SSHD_CONFIG.
start_test_sshd() {
  local dir="$1" port="$2"
  mkdir -p "$dir" /run/sshd
  chmod 700 "$dir"
  [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pressluft-test-node -f "$dir/host_ed25519" ||
    die "ssh-keygen failed"
  : > "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  # StrictModes off: the files live under /tmp, which sshd's ownership checks reject.
  cat > "$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd refused its test configuration"
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" || die "sshd did not start (see $dir/sshd.log)"
  local waited=0
  until "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$port" 2>/dev/null; do
    (( waited < 100 )) || { cat "$dir/sshd.log" >&2; die "sshd is not answering on 127.0.0.1:$port"; }
    sleep 0.1
    waited=$((waited + 1))
  done
  export PRESSLUFT_TEST_SSH_PORT="$port"
  export PRESSLUFT_TEST_AUTHORIZED_KEYS="$dir/authorized_keys"
  export PRESSLUFT_TEST_SSHD_CONFIG="$dir/sshd_config"
}

stop_test_sshd() {
  local dir="$1"
  [ -n "$dir" ] || return 0
  stop_by_pid_file "$dir/sshd.pid" "the test sshd"
}
