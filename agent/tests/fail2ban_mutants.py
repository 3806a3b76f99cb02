#!/usr/bin/env python3
"""Differential corpus: variants of fail2ban's test-log lines, judged by fail2ban-regex.

Used by agent/tests/fail2ban_differential.rs (see there). fail2ban's test logs
(read at run time from the installed package, as fail2ban_corpus.py reads
them) only show each filter a handful of line shapes; an admin's logs show it
many more. This script rewrites every job of fail2ban_corpus.py into variants,
each one transformation applied to every line of the job (so a multi-line
session stays one session):

- addresses: every address in the lines becomes a documentation address of
  one form (IPv4, IPv6 compressed or in full, upper case, `::ffff:` mapped),
  or a malformed one that must not count;
- syslog prefixes (the `__prefix_line` forms of fail2ban's common.conf): no
  host, no pid, a pid added, `<facility.level>`, a vserver tag, a kernel
  stamp, Solaris' `[ID n facility.level]`, doubled spaces;
- time stamps: the stamp fail2ban's own date detector finds in the line is
  written again in another form its default detection (or the filter's
  `datepattern`) may or may not accept;
- modes: every mode the filter declares (`<prefix-<mode>>` with its
  `prefix-NAME` keys), not only the ones the test log uses;
- mixes: a few random combinations of the above (fixed seed).

Every mode variant is kept; of the others, a seeded random choice within a
line budget per filter.

The variants' lines then go through fail2ban-regex's own class, exactly as in
fail2ban_corpus.py: fail2ban is the oracle, nothing here says what a line
should give. Output: fail2ban_corpus.py's JSON, each job with a "variant"
label and no failJSON expectations.

Usage: fail2ban_mutants.py FILTER_DIR BASE_OPTIONS [NAME ...]
"""

import ipaddress
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fail2ban_args  # noqa: E402
import fail2ban_corpus as corpus  # noqa: E402
from fail2ban.server.mytime import MyTime  # noqa: E402

SEED = 11
# Lines of variants per filter (spread over its jobs): the whole run stays
# well under two minutes in a debug build.
LINES_PER_FILTER = 120

V4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w])")
V6 = re.compile(r"(?<![\w:.])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}(?:\.\d{1,3}){3})?)(?![\w:])")
SYSLOG = re.compile(
    r"^(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<tag>[A-Za-z][\w.\-/]*)(?P<pid>\[\d+\])?: (?P<msg>.*)$")


def addresses(lines):
    """The distinct addresses in the lines, in order of first use."""
    seen = []
    for text in lines:
        for m in V4.finditer(text):
            a = m.group(1)
            try:
                ipaddress.IPv4Address(a)
            except ValueError:
                continue
            if a not in seen:
                seen.append(a)
        for m in V6.finditer(text):
            a = m.group(1)
            if a.count(":") < 2:
                continue
            try:
                ipaddress.IPv6Address(a)
            except ValueError:
                continue
            if a not in seen:
                seen.append(a)
    return seen


def v4(i):
    nets = ["192.0.2.%d", "198.51.100.%d", "203.0.113.%d"]
    return nets[i % 3] % (7 + 31 * i % 240)


ADDRESS_FORMS = {
    "v4": v4,
    "v6": lambda i: "2001:db8::%x" % (0x10 + i),
    "v6-full": lambda i: "2001:db8:0:0:0:0:0:%x" % (0x20 + i),
    "v6-upper": lambda i: "2001:DB8:A::%X" % (0xBC + i),
    "v6-long": lambda i: "2001:db8:85a3:8d3:1319:8a2e:370:%x" % (0x7300 + i),
    "v4-mapped": lambda i: "::ffff:" + v4(i),
    "v4-bad-octet": lambda i: "192.0.2.%d" % (256 + i),
}


def map_addresses(lines, form):
    found = addresses(lines)
    if not found:
        return None
    new = {a: ADDRESS_FORMS[form](i) for i, a in enumerate(found)}
    # Longest first, so an address that is a prefix of another is not cut.
    pat = re.compile(r"(?<![\w.:])(" + "|".join(
        re.escape(a) for a in sorted(found, key=len, reverse=True)) + r")(?![\w:]|\.\d)")
    return [pat.sub(lambda m: new[m.group(1)], t) for t in lines]


def prefix(form):
    def f(m):
        stamp, host, tag, pid, msg = m.group("stamp", "host", "tag", "pid", "msg")
        pid = pid or ""
        if form == "no-host":
            return "%s %s%s: %s" % (stamp, tag, pid, msg)
        if form == "no-pid":
            return "%s %s %s: %s" % (stamp, host, tag, msg)
        if form == "add-pid":
            return "%s %s %s%s: %s" % (stamp, host, tag, pid or "[4242]", msg)
        if form == "bsd-verbose":
            return "%s <auth.info> %s %s%s: %s" % (stamp, host, tag, pid, msg)
        if form == "vserver":
            return "%s %s @vserver_mail %s%s: %s" % (stamp, host, tag, pid, msg)
        if form == "kernel":
            return "%s %s kernel: [ 8123.456789] %s%s: %s" % (stamp, host, tag, pid, msg)
        if form == "solaris":
            return "%s %s %s%s: [ID 800047 auth.info] %s" % (stamp, host, tag, pid, msg)
        if form == "spaces":
            return "%s  %s  %s%s:  %s" % (stamp, host, tag, pid, msg)
        if form == "fqdn-host":
            return "%s mail.example.org %s%s: %s" % (stamp, tag, pid, msg)
        raise ValueError(form)
    return f


PREFIX_FORMS = ["no-host", "no-pid", "add-pid", "bsd-verbose", "vserver", "kernel",
                "solaris", "spaces", "fqdn-host"]


def map_prefix(lines, form):
    out = [SYSLOG.sub(prefix(form), t) for t in lines]
    return out if out != lines else None


def month(t):
    return time.strftime("%b", t)


STAMP_FORMS = {
    "syslog": lambda t, e: "%s %2d %s" % (month(t), t.tm_mday, time.strftime("%H:%M:%S", t)),
    "syslog-ms": lambda t, e: "%s %02d %s.412" % (month(t), t.tm_mday, time.strftime("%H:%M:%S", t)),
    "iso": lambda t, e: time.strftime("%Y-%m-%d %H:%M:%S", t),
    "iso-t-tz": lambda t, e: time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".123456+02:00",
    "iso-z": lambda t, e: time.strftime("%Y-%m-%dT%H:%M:%S", t) + "Z",
    "iso-comma": lambda t, e: time.strftime("%Y-%m-%d %H:%M:%S", t) + ",731",
    "slashes": lambda t, e: time.strftime("%Y/%m/%d %H:%M:%S", t),
    "dots": lambda t, e: time.strftime("%Y.%m.%d %H:%M:%S", t),
    "asctime": lambda t, e: time.strftime("%a %b %d %H:%M:%S %Y", t),
    "asctime-ms": lambda t, e: time.strftime("%a %b %d %H:%M:%S", t) + ".011 " + str(t.tm_year),
    "year-after-day": lambda t, e: time.strftime("%a %b %d %Y %H:%M:%S", t),
    "apache": lambda t, e: time.strftime("%d/%b/%Y:%H:%M:%S", t) + " +0000",
    "named": lambda t, e: time.strftime("%d-%b-%Y %H:%M:%S", t) + ".252",
    "dmy": lambda t, e: time.strftime("%d/%m/%Y %H:%M:%S", t),
    "dmy-short": lambda t, e: time.strftime("%d-%m-%y %H:%M:%S", t),
    "cpanel": lambda t, e: time.strftime("%m/%d/%Y:%H:%M:%S", t),
    "mdy-ms": lambda t, e: time.strftime("%m-%d-%Y %H:%M:%S", t) + ".252",
    "epoch": lambda t, e: "%d.%06d" % (int(e), 123456),
    "mysql": lambda t, e: time.strftime("%y%m%d %H:%M:%S", t),
    "tomcat": lambda t, e: time.strftime("%b %d, %Y %I:%M:%S %p", t),
    "compact": lambda t, e: time.strftime("%Y%m%dT%H%M%S", t),
    "tz-name": lambda t, e: "UTC " + time.strftime("%b %d %H:%M:%S", t),
}


def map_stamps(fr, lines, form):
    """Each line's stamp, as fail2ban's date detector of the filter finds it,
    written again in FORM."""
    dd = fr._filter.dateDetector
    out = []
    changed = False
    for text in lines:
        found = dd.getTime(text) if dd is not None else None
        if not found or found[1] is None:
            out.append(text)
            continue
        epoch, m = found
        a, b = m.span(1)
        t = time.gmtime(epoch)
        new = text[:a] + STAMP_FORMS[form](t, epoch) + text[b:]
        changed |= new != text
        out.append(new)
    return out if changed else None


def modes(name, filter_dir):
    """The modes the filter declares: the NAME of every `PREFIX-NAME` key of
    a `<PREFIX-<mode>>` it uses."""
    with open(os.path.join(filter_dir, name + ".conf"), encoding="utf-8") as f:
        text = f.read()
    found = set()
    for p in set(re.findall(r"<([\w-]+?)-<mode>", text)):
        for m in re.finditer(r"^" + re.escape(p) + r"-([a-z0-9]+)\s*=", text, re.M):
            found.add(m.group(1))
    return sorted(found)


def variants(filter_dir, base, job, rng, budget):
    """The job's variants: every mode, then a seeded random choice of the
    others, as many as BUDGET lines allow (at least five)."""
    texts = [ln["text"] for ln in job["lines"]]
    out = []

    def add(label, lines, options=None):
        if lines is not None:
            out.append((label, lines, options))

    for form in ADDRESS_FORMS:
        add("addr:" + form, map_addresses(texts, form))
    for form in PREFIX_FORMS:
        add("prefix:" + form, map_prefix(texts, form))
    fr = None if job["journal"] else corpus.regex_reader(filter_dir, base, job)[0]
    if fr is not None:
        for form in STAMP_FORMS:
            add("stamp:" + form, map_stamps(fr, texts, form))
    if "mode" not in job["options"]:
        for mode in modes(job["filter"], filter_dir):
            add("mode:" + mode, texts, {"mode": mode})
    for k in range(3):
        a = rng.choice(list(ADDRESS_FORMS)[:-1])
        p = rng.choice(PREFIX_FORMS)
        s = rng.choice(list(STAMP_FORMS))
        lines = map_addresses(texts, a) or texts
        lines = map_prefix(lines, p) or lines
        if fr is not None:
            lines = map_stamps(fr, lines, s) or lines
        if lines != texts:
            add("mix:%s+%s+%s" % (a, p, s), lines)
    modes_ = [v for v in out if v[0].startswith("mode:")]
    rest = [v for v in out if not v[0].startswith("mode:")]
    rng.shuffle(rest)
    keep = max(5, budget // max(1, len(texts)))
    return modes_ + rest[:keep]


def main():
    filter_dir, base, names = fail2ban_args.read(corpus.LOGS)
    MyTime.setTime(None)
    rng = random.Random(SEED)
    jobs = []
    for name in names:
        jobs_of = corpus.jobs_of(name)
        for job in jobs_of:
            budget = LINES_PER_FILTER // len(jobs_of)
            for label, lines, options in variants(filter_dir, base, job, rng, budget):
                v = {
                    "filter": job["filter"],
                    "options": dict(job["options"], **(options or {})),
                    "journal": job["journal"],
                    "variant": label,
                    "lines": [{"text": t, "expect": None} for t in lines],
                }
                corpus.run_fail2ban_regex(filter_dir, base, v)
                jobs.append(v)
    import fail2ban
    json.dump({"version": fail2ban.version.version, "jobs": jobs}, sys.stdout)


if __name__ == "__main__":
    main()
