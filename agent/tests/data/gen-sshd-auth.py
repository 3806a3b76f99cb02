#!/usr/bin/env python3
"""Writes sshd-auth.log: a realistic, attack-heavy OpenSSH auth log of about
2,000 lines (Debian, OpenSSH 9.x before 9.8 with PAM, so every line is sshd's:
fail2ban 1.0.2, which the test compares with, does not read sshd-session), with
documentation addresses only.

The message sequences are those OpenSSH and pam_unix write for each kind of
connection (see docs/filters.md, sshd); connections overlap, so their lines
interleave. Deterministic (fixed seed): rerun it to get the same file.

    python3 agent/tests/data/gen-sshd-auth.py > agent/tests/data/sshd-auth.log
"""
import random

rng = random.Random(20261206)

V4 = ["192.0.2.%d" % i for i in range(1, 255)] + \
     ["198.51.100.%d" % i for i in range(1, 255)] + \
     ["203.0.113.%d" % i for i in range(1, 255)]
V6 = ["2001:db8:%x::%x" % (rng.randrange(1, 0xffff), rng.randrange(1, 0xffff)) for _ in range(20)]
# Attackers: a few busy ones, many that try a handful of times.
ATTACKERS = rng.sample(V4, 55) + rng.sample(V6, 6)
WEIGHTS = [max(1, int(40 / (i + 1))) for i in range(len(ATTACKERS))]
USERS = ["admin", "test", "user", "oracle", "postgres", "ubuntu", "guest", "ftpuser",
         "git", "pi", "support", "deploy", "jenkins", "hadoop", "mysql", "www", "tomcat",
         "minecraft", "steam", "dev", "ansible", "elastic", ""]
STAFF = [("alice", "192.0.2.200"), ("bob", "2001:db8:42::10"), ("carol", "198.51.100.200")]
FP = "SHA256:%s" % "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43))

lines = []  # (time, seq, text)
seq = 0
DAY = 86400
SWITCH = DAY + 1  # no sshd-session lines (OpenSSH 9.8+): see above
pid = 12000


def emit(t, prog, p, msg):
    global seq
    seq += 1
    lines.append((t, seq, prog, p, msg))


def pam_fail(h, user=None):
    u = "  user=%s" % user if user is not None else ""
    return "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s%s" % (h, u)


def connection(t, kind):
    global pid
    pid += rng.randrange(1, 40)
    p = pid
    prog = "sshd" if t < SWITCH else "sshd-session"
    h = rng.choices(ATTACKERS, WEIGHTS)[0]
    port = rng.randrange(1024, 65535)
    dt = [t]

    def e(msg, gap=0.0):
        dt[0] += gap
        emit(dt[0], prog, p, msg)

    def close_preauth(user_part):
        if rng.random() < 0.7:
            e("Received disconnect from %s port %d:11: Bye Bye [preauth]" % (h, port), rng.uniform(0.1, 1))
            e("Disconnected from %s%s port %d [preauth]" % (user_part, h, port))
        else:
            e("Connection closed by %s%s port %d [preauth]" % (user_part, h, port), rng.uniform(0.1, 2))

    if kind == "root1":  # one root password per connection
        e(pam_fail(h, "root"), 0.5)
        e("Failed password for root from %s port %d ssh2" % (h, port), 2.1)
        close_preauth("authenticating user root ")
    elif kind == "invalid1":  # invalid user, one password
        u = rng.choice(USERS)
        e("Invalid user %s from %s port %d" % (u, h, port), 0.3)
        e("pam_unix(sshd:auth): check pass; user unknown", 0.2)
        e(pam_fail(h), 0.0)
        e("Failed password for invalid user %s from %s port %d ssh2" % (u, h, port), 2.2)
        close_preauth("invalid user %s " % u)
    elif kind == "rootmany":  # several passwords on one connection
        n = rng.randrange(2, 7)
        e(pam_fail(h, "root"), 0.5)
        for _ in range(n):
            e("Failed password for root from %s port %d ssh2" % (h, port), rng.uniform(2, 4))
        if n == 6:
            e("error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]" % (h, port), 0.1)
            e("Disconnecting authenticating user root %s port %d: Too many authentication failures [preauth]" % (h, port))
        else:
            close_preauth("authenticating user root ")
        e("PAM %d more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % (n - 1, h))
        if n > 3:
            e("PAM service(sshd) ignoring max retries; %d > 3" % n)
    elif kind == "invalidmany":
        u = rng.choice(USERS)
        n = rng.randrange(2, 5)
        e("Invalid user %s from %s port %d" % (u, h, port), 0.3)
        e("pam_unix(sshd:auth): check pass; user unknown", 0.2)
        e(pam_fail(h), 0.0)
        for _ in range(n):
            e("Failed password for invalid user %s from %s port %d ssh2" % (u, h, port), rng.uniform(2, 4))
        close_preauth("invalid user %s " % u)
        e("PAM %d more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s" % (n - 1, h))
    elif kind == "probe":  # invalid user, no password (key-only server probing)
        u = rng.choice(USERS)
        e("Invalid user %s from %s port %d" % (u, h, port), 0.3)
        e("Connection closed by invalid user %s %s port %d [preauth]" % (u, h, port), 0.4)
    elif kind == "gaveup":  # PAM was checking the password when the client left
        e(pam_fail(h, "root"), 0.5)
        e("Connection closed by authenticating user root %s port %d [preauth]" % (h, port), 1.0)
    elif kind == "scan":  # pre-auth scanners: not offences in normal mode
        r = rng.random()
        if r < 0.4:
            e("Connection closed by %s port %d [preauth]" % (h, port), 0.2)
        elif r < 0.6:
            e("error: kex_exchange_identification: Connection closed by remote host", 0.1)
            e("Connection closed by %s port %d" % (h, port))
        elif r < 0.8:
            e("error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"", 0.1)
            e("banner exchange: Connection from %s port %d: invalid format" % (h, port))
        else:
            e("Unable to negotiate with %s port %d: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]" % (h, port), 0.3)
    elif kind == "keyroot":  # an attacker's keys for root
        e("Failed publickey for root from %s port %d ssh2: RSA %s" % (h, port, FP), 0.4)
        close_preauth("authenticating user root ")
    elif kind in ("login", "typo"):  # staff
        user, sh = rng.choice(STAFF)
        if kind == "typo":
            e("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=%s" % (sh, user), 0.5)
            e("Failed password for %s from %s port %d ssh2" % (user, sh, port), 2.0)
            e("Accepted password for %s from %s port %d ssh2" % (user, sh, port), 3.0)
        else:
            e("Accepted publickey for %s from %s port %d ssh2: ED25519 %s" % (user, sh, port, FP), 0.3)
        e("pam_unix(sshd:session): session opened for user %s(uid=1000) by %s(uid=0)" % (user, user), 0.01)
        e("Received disconnect from %s port %d:11: disconnected by user" % (sh, port), rng.uniform(60, 3000))
        e("Disconnected from user %s %s port %d" % (user, sh, port))
        e("pam_unix(sshd:session): session closed for user %s" % user)


KINDS = [("root1", 26), ("invalid1", 20), ("rootmany", 9), ("invalidmany", 5), ("probe", 8),
         ("gaveup", 2), ("scan", 16), ("keyroot", 2), ("login", 4), ("typo", 1)]
t = 0.0
while len(lines) < 1985:
    # Bursts: bots open connections a few seconds apart, then pause.
    r = rng.random()
    t += rng.expovariate(1 / 3.0) if r < 0.4 else rng.expovariate(1 / 60.0) if r < 0.9 else rng.uniform(300, 1800)
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    connection(t, kind)

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
lines.sort(key=lambda x: (x[0], x[1]))
for (tm, _, prog, p, msg) in lines:
    tm = int(tm) % DAY
    day = 19
    print("May %2d %02d:%02d:%02d web1 %s[%d]: %s" % (day, tm // 3600, tm % 3600 // 60, tm % 60, prog, p, msg))
