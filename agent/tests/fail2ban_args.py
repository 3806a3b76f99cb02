"""The command line fail2ban_corpus.py and fail2ban_mutants.py share.

Both take `FILTER_DIR BASE_OPTIONS [NAME ...]`: fail2ban's filter.d, a JSON
file of the options a jail gives each filter ({NAME: {option: value}}), and
the filters to run, by default every stock filter that has a test log.
"""

import json
import os
import sys


def read(logs):
    """(FILTER_DIR, the BASE_OPTIONS object, the filter names) from sys.argv.

    Without names, every `NAME.conf` in FILTER_DIR whose test log LOGS/NAME
    exists, in name order.
    """
    if len(sys.argv) < 3:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} FILTER_DIR BASE_OPTIONS [NAME ...]")
    filter_dir = sys.argv[1]
    with open(sys.argv[2], encoding="utf-8") as f:
        base = json.load(f)
    names = sys.argv[3:] or sorted(
        n[:-5] for n in os.listdir(filter_dir)
        if n.endswith(".conf") and os.path.isfile(os.path.join(logs, n[:-5])))
    return filter_dir, base, names
