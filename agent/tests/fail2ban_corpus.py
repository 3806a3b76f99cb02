#!/usr/bin/env python3
"""Reads fail2ban's installed test logs and runs fail2ban-regex on their lines.

Used by agent/tests/fail2ban_stock_filters.rs (see there). For every stock
filter in FILTER_DIR that has a test log, the test log is read the way
fail2ban's own samplestestcase.py reads it (`# filterOptions:`,
`# fileOptions:`, `# addFILE:`, `test.condition`, `# failJSON:` with its
`constraint`), giving one job per filter and option set: the lines in order,
each with what its failJSON expects. Each job's lines then go through
fail2ban-regex's own class (fail2ban.client.fail2banregex.Fail2banRegex, the
code behind the `fail2ban-regex -o row` command line, line by line as its
`process` does), in this one process: starting fail2ban-regex once per job
would cost about half a second each.

Prints one JSON object: {"version": "...", "jobs": [{"filter": NAME,
"options": {...}, "journal": bool, "lines": [{"text": LINE, "expect": null
or {"match": bool, "host": ADDR or null}, "fail2ban": [HOST, ...]}]}]}.
"fail2ban" lists the hosts fail2ban-regex reported at that line (a session
that gets its address later is reported at the line that gave it).

fail2ban-regex runs each filter with BASE_OPTIONS (a JSON file: {NAME:
{option: value}}, the options a jail gives the filter, as the imported config
has them) overlaid by the job's own options: the options log2drop runs it with.

Usage: fail2ban_corpus.py FILTER_DIR BASE_OPTIONS [NAME ...]
"""

import io
import json
import os
import re
import sys
from contextlib import redirect_stdout

import fail2ban
from fail2ban.client import fail2banregex as f2br
from fail2ban.server.mytime import MyTime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fail2ban_args  # noqa: E402

LOGS = os.path.join(os.path.dirname(fail2ban.__file__), "tests", "files", "logs")
# fail2ban's own TEST_NOW (tests/utils.py): the journal's time of a line.
TEST_NOW = 1124013600
HEADER = re.compile(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$")


def jobs_of(name):
    """The jobs of filter NAME's test log, as samplestestcase.py forms them."""
    jobs = {}  # fltName -> job
    filenames = [name]
    i = 0
    common = {}
    while i < len(filenames):
        path = os.path.join(LOGS, filenames[i])
        i += 1
        current = []
        ignore_block = False
        faildata = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        it = iter(lines)
        for line in it:
            m = HEADER.match(line)
            if m:
                data = json.loads(m.group(2))
                kind = m.group(1)
                if kind == "fileOptions":
                    common = data
                    continue
                if kind == "filterOptions":
                    current = []
                    ignore_block = False
                    for fd in data if isinstance(data, list) else [data]:
                        opts = dict(common, **fd) if common else fd
                        if opts.get("test.condition"):
                            ignore_block = not eval(opts["test.condition"], {"name": name})
                        if not ignore_block:
                            flt_opts = {k: v for k, v in opts.items() if not k.startswith("test.")}
                            key = opts.get("test.filter-name") or (str(flt_opts) if flt_opts else "")
                            job = jobs.setdefault(key, {
                                "filter": name, "options": flt_opts,
                                "journal": opts.get("logtype") == "journal",
                                "lines": [],
                            })
                            current.append((job, opts))
                    continue
                if kind == "addFILE":
                    filenames.append(data)
                    continue
                faildata = data
                line = next(it, None)
                if line is None:
                    break
            elif ignore_block or line.startswith("#") or not line.strip():
                continue
            else:
                faildata = {}
            if ignore_block:
                continue
            if not current:
                job = jobs.setdefault("", {"filter": name, "options": {}, "journal": False, "lines": []})
                current = [(job, {})]
            for job, opts in current:
                text = line.rstrip("\r\n")
                if opts.get("logtype") == "journal" and opts.get("test.prefix-line"):
                    text = opts["test.prefix-line"] + text
                expect = None
                c = faildata.get("constraint")
                if not c or eval(c, {"name": name, "opts": opts}):
                    expect = {"match": bool(faildata.get("match", False)),
                              "host": faildata.get("host")}
                job["lines"].append({"text": text, "expect": expect})
    return list(jobs.values())


def regex_reader(filter_dir, base, job):
    """fail2ban-regex's own class, as `-o row`, with the job's filter and
    options read; None when fail2ban cannot read them (its message in the
    second item)."""
    arg = os.path.join(filter_dir, job["filter"] + ".conf")
    options = dict(base.get(job["filter"], {}), **job["options"])
    if options:
        arg += "[" + ", ".join('%s="%s"' % (k, v) for k, v in options.items()) + "]"
    parser = f2br.get_opt_parser()
    opts, _ = parser.parse_args(["-o", "row", "-c", os.path.dirname(filter_dir), "-", arg])
    out = io.StringIO()
    with redirect_stdout(out):
        fr = f2br.Fail2banRegex(opts)
        if not fr.readRegex(arg, "fail"):
            return None, "fail2ban-regex cannot read %s:\n%s" % (arg, out.getvalue())
    return fr, None


def run_fail2ban_regex(filter_dir, base, job):
    """Runs the job's lines through fail2ban-regex's own class, as `-o row`."""
    fr, err = regex_reader(filter_dir, base, job)
    if fr is None:
        raise SystemExit(err)
    for line in job["lines"]:
        text = line["text"]
        if job["journal"]:
            # What fail2ban's systemd backend hands the filter: the time is known.
            _, ret, ignored = fr.testRegex(("", "", text), TEST_NOW)
        else:
            _, ret, ignored = fr.testRegex(text)
        line["fail2ban"] = [] if ignored else [str(r[3].get("ip", r[1])) for r in ret]


def main():
    filter_dir, base, names = fail2ban_args.read(LOGS)
    MyTime.setTime(None)
    jobs = []
    for name in names:
        for job in jobs_of(name):
            run_fail2ban_regex(filter_dir, base, job)
            jobs.append(job)
    json.dump({"version": fail2ban.version.version, "jobs": jobs}, sys.stdout)


if __name__ == "__main__":
    main()
