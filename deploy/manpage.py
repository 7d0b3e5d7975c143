#!/usr/bin/env python3
"""deploy/manpage.py: a man page from a program's --help text (no help2man on a bare Debian).

Usage: manpage.py PROGRAM SECTION VERSION SUMMARY OUTPUT
Runs PROGRAM --help and writes OUTPUT: NAME (SUMMARY), SYNOPSIS, the help text verbatim as DESCRIPTION,
then ENVIRONMENT, FILES and SEE ALSO. The help text stays the single source of the flags."""
import os
import subprocess
import sys


def roff(text):
    out = []
    for line in text.replace("\\", "\\e").replace("\t", "        ").splitlines():
        # A line starting with . or ' would be a roff request.
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def main():
    program, section, version, summary, output = sys.argv[1:6]
    name = os.path.basename(program)
    result = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30)
    help_text = (result.stdout or result.stderr).rstrip()
    if not help_text:
        sys.exit("%s --help printed nothing (exit code %d)" % (program, result.returncode))
    page = [
        '.TH %s %s "" "quorumd %s" "quorumd manual"' % (name.upper(), section, version),
        ".SH NAME",
        "%s \\- %s" % (name, summary),
        ".SH SYNOPSIS",
        ".B %s" % name,
        "[\\fIflags\\fR]" + (" \\fICOMMAND\\fR [\\fIarguments\\fR]" if name == "quorumctl" else ""),
        ".SH DESCRIPTION",
        "The text of",
        ".BR \"%s \\-\\-help\" :" % name,
        ".PP",
        ".nf",
        roff(help_text),
        ".fi",
    ]
    if name == "quorumd":
        page += [
            ".SH ENVIRONMENT",
            "Every flag is also read from its ETCD_* variable (\\-\\-initial\\-cluster\\-state as",
            "ETCD_INITIAL_CLUSTER_STATE); a flag given on the command line wins.",
            ".SH FILES",
            ".TP",
            ".I /etc/quorumd/NAME.env",
            "the ETCD_* variables of member NAME, read by the systemd unit quorumd@NAME.service",
            ".TP",
            ".I DATA_DIR/control.sock",
            "the operator socket (mode 0600) that quorumctl talks to",
            ".SH SEE ALSO",
            ".BR quorumctl (1),",
            ".BR etcdctl (1),",
            "README.md in the documentation directory (share/doc/quorumd)",
        ]
    else:
        page += [".SH SEE ALSO", ".BR quorumd (8),", ".BR etcdctl (1)"]
    with open(output, "w") as handle:
        handle.write("\n".join(page) + "\n")


if __name__ == "__main__":
    main()
