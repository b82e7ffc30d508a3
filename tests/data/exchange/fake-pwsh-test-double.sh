#!/bin/sh
# TEST DOUBLE for dirsync's Exchange script runner only. It is NOT PowerShell and runs no
# PowerShell: it takes the arguments dirsync passes (-NoProfile -NonInteractive -File SCRIPT
# -OutputPath OUT -Name value ...), records them in OUT.args, and runs SCRIPT as a *shell*
# script with $OUT set, so each test scripts the behaviour it needs (write data, fail, hang).
printf '%s\n' "$@" > "${TMPDIR:-/tmp}/dirsync-test-double.args.$$"
script=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        -File) script="$2"; shift 2 ;;
        -OutputPath) out="$2"; shift 2 ;;
        *) shift ;;
    esac
done
mv "${TMPDIR:-/tmp}/dirsync-test-double.args.$$" "$out.args"
export OUT="$out"
. "$script"
