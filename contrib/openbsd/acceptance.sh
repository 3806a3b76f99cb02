#!/bin/ksh
#
# MANUAL acceptance run of log2drop's PF backend on a real OpenBSD host. CI does not
# run it (CI has no OpenBSD); run it by hand, as root, after installing log2drop
# (docs/openbsd.md) and before calling an OpenBSD release of it good.
#
#   doas ksh contrib/openbsd/acceptance.sh [/usr/local/bin/log2drop]
#
# It runs its own agent with a scratch config (state and socket in a temporary
# directory, a fake log file, table <log2drop>) in the foreground, so stop an
# rcctl-managed log2drop first (`rcctl stop log2drop`). It checks, with pfctl as
# the independent witness:
#   1. start: the table exists, the helper holds /dev/pf, the agent does not;
#   2. ban from a log: 3 sshd failures of 192.0.2.10 put it in the table;
#   3. manual bans: an IPv6 host and a CIDR (host bits cleared) appear;
#   4. expiry: a 15 s ban leaves the table by itself;
#   5. restart: bans are still in the table after a restart, the agent reconciled
#      (an entry slipped in by hand while it was down is gone), and nothing expired
#      came back;
#   6. kill_states: a state from a banned host is gone;
#   7. flush: the table is empty and the agent stopped.
# Only documentation addresses are used; nothing leaves the host.

set -u

BIN=${1:-/usr/local/bin/log2drop}
TABLE=log2drop
WORK=$(mktemp -d /tmp/log2drop-accept.XXXXXXXX) || exit 1
CONF=$WORK/log2drop.toml
LOG=$WORK/authlog
SOCK=$WORK/log2drop.sock
AGENT_PID=
FAILED=0

say()  { print -- "==> $*"; }
ok()   { print -- "    ok: $*"; }
bad()  { print -- "    FAIL: $*"; FAILED=$((FAILED + 1)); }
die()  { print -- "error: $*" >&2; cleanup; exit 2; }

cleanup() {
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}
trap 'cleanup; rm -rf "$WORK"' EXIT INT TERM

in_table() { pfctl -t "$TABLE" -T show 2>/dev/null | grep -qx "[[:space:]]*$1"; }
expect_in()  { if in_table "$1"; then ok "$1 in <$TABLE>"; else bad "$1 not in <$TABLE>"; fi; }
expect_out() { if in_table "$1"; then bad "$1 still in <$TABLE>"; else ok "$1 not in <$TABLE>"; fi; }
ctl() { "$BIN" "$@" --socket "$SOCK"; }
# fstat(1) names a character device in its last column: "pf" for /dev/pf.
holds_pf() { fstat -p "$1" | awk '$NF == "pf" { found = 1 } END { exit !found }'; }

start_agent() {
	"$BIN" run --config "$CONF" >>"$WORK/agent.log" 2>&1 &
	AGENT_PID=$!
	i=0
	while [ ! -S "$SOCK" ]; do
		sleep 1
		i=$((i + 1))
		[ $i -gt 20 ] && { cat "$WORK/agent.log"; die "the agent did not open $SOCK"; }
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/agent.log"; die "the agent exited"; }
	done
}

stop_agent() {
	kill "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# --- preconditions -----------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root"
[ "$(uname -s)" = OpenBSD ] || die "this is for OpenBSD"
[ -x "$BIN" ] || die "$BIN is not executable"
pfctl -si 2>/dev/null | grep -q "Status: Enabled" || die "pf is not enabled (pfctl -e)"
pgrep -xf "$BIN run.*" >/dev/null && die "a log2drop agent is running; rcctl stop log2drop"
id -u _log2drop >/dev/null 2>&1 || die "user _log2drop is missing (docs/openbsd.md)"
pfctl -sr | grep -q "<$TABLE>" ||
	print "    note: no pf rule references <$TABLE>; bans are listed but not enforced"

: >"$LOG"
cat >"$CONF" <<EOF
[agent]
state_dir = "$WORK/state"
socket = "$SOCK"
allow = ["127.0.0.0/8", "::1"]

[backends.pf]
table = "$TABLE"
kill_states = true

[filters.sshd]
regex = ['sshd(?:-session)?\[[0-9]+\]: Failed password for (?:invalid user )?.* from <HOST> port [0-9]+(?: ssh2)?$']

[sources.auth]
path = "$LOG"
filters = ["sshd"]
start = "beginning"

[jails.ssh]
filters = ["sshd"]
maxretry = 3
findtime = "10m"
bantime = "1h"
EOF
"$BIN" check --config "$CONF" || die "the scratch config does not check"

# --- 1. start ----------------------------------------------------------------
say "1. start"
pfctl -t "$TABLE" -T flush >/dev/null 2>&1
start_agent
if pfctl -s Tables | grep -qx "$TABLE"; then ok "table <$TABLE> exists"; else bad "no table <$TABLE>"; fi
HELPER=$(pgrep -f "$BIN pf-helper")
if [ -n "$HELPER" ]; then ok "helper running (pid $HELPER)"; else bad "no pf-helper process"; fi
if holds_pf "$AGENT_PID"; then bad "the agent holds /dev/pf"; else ok "the agent holds no /dev/pf"; fi
if [ -n "$HELPER" ] && holds_pf "$HELPER"; then ok "the helper holds /dev/pf"; else bad "the helper holds no /dev/pf"; fi
if [ -n "$HELPER" ] && [ "$(fstat -p "$HELPER" | awk 'NR == 2 { print $1 }')" = _log2drop ]; then
	ok "the helper runs as _log2drop"
else
	bad "the helper does not run as _log2drop"
fi

# --- 2. ban from a log ---------------------------------------------------------
say "2. ban from a log line"
for p in 40001 40002 40003; do
	print "$(date '+%b %e %H:%M:%S') $(hostname -s) sshd[4242]: Failed password for root from 192.0.2.10 port $p ssh2" >>"$LOG"
done
sleep 3
expect_in 192.0.2.10
pfctl -t "$TABLE" -T show

# --- 3. manual bans ------------------------------------------------------------
say "3. manual bans"
ctl ban 2001:db8::10 --for 1h >/dev/null || bad "log2drop ban 2001:db8::10 failed"
ctl ban 198.51.100.77/24 --for 1h >/dev/null || bad "log2drop ban 198.51.100.77/24 failed"
expect_in 2001:db8::10
expect_in 198.51.100.0/24

# --- 4. expiry ----------------------------------------------------------------
say "4. expiry (15 s ban, waiting 25 s)"
ctl ban 203.0.113.15 --for 15s >/dev/null || bad "log2drop ban 203.0.113.15 failed"
expect_in 203.0.113.15
sleep 25
expect_out 203.0.113.15

# --- 5. restart -----------------------------------------------------------------
say "5. restart"
ctl ban 203.0.113.16 --for 20s >/dev/null
stop_agent
if in_table 192.0.2.10; then ok "bans stay enforced while the agent is down"; else bad "the table lost its bans when the agent stopped"; fi
pfctl -t "$TABLE" -T add 203.0.113.99 >/dev/null   # not a log2drop ban
sleep 25                                           # 203.0.113.16 expires meanwhile
start_agent
sleep 2
expect_in 192.0.2.10
expect_in 2001:db8::10
expect_in 198.51.100.0/24
expect_out 203.0.113.16
expect_out 203.0.113.99
ctl status | grep -i -A3 pf

# --- 6. kill_states -------------------------------------------------------------
say "6. kill_states"
# A state from a documentation address, made with a spoofed packet to lo0 is not
# possible portably; instead ban an address that holds a real state if you have one:
if [ -n "${KILL_ADDR:-}" ]; then
	before=$(pfctl -ss | grep -c "$KILL_ADDR")
	ctl ban "$KILL_ADDR" --for 60s --force >/dev/null
	sleep 1
	after=$(pfctl -ss | grep -c "$KILL_ADDR")
	if [ "$before" -gt 0 ] && [ "$after" -eq 0 ]; then ok "states of $KILL_ADDR killed ($before)"; else bad "states of $KILL_ADDR: $before before, $after after"; fi
	ctl unban "$KILL_ADDR" >/dev/null
else
	print "    skipped: set KILL_ADDR to an address with live states (e.g. a test client's)"
fi

# --- 7. flush -------------------------------------------------------------------
say "7. flush"
ctl flush || bad "log2drop flush failed"
sleep 2
if [ -z "$(pfctl -t "$TABLE" -T show 2>/dev/null)" ]; then ok "<$TABLE> is empty"; else bad "<$TABLE> still holds entries"; pfctl -t "$TABLE" -T show; fi
if kill -0 "$AGENT_PID" 2>/dev/null; then bad "the agent still runs after flush"; else ok "the agent stopped"; AGENT_PID=; fi
sleep 1
if pgrep -f "$BIN pf-helper" >/dev/null; then bad "the helper outlived the agent"; else ok "the helper exited"; fi

print
if [ "$FAILED" -eq 0 ]; then
	print "PASS: every check held"
	exit 0
fi
cleanup
print "FAIL: $FAILED check(s) failed; agent log: $WORK/agent.log"
trap - EXIT
exit 1
