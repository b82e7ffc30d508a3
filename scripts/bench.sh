#!/usr/bin/env bash
# The benchmark: dirsync against ldapsearch and a python-ldap3 export, over LDAPS from a real
# OpenLDAP slapd with Active Directory's limits, at N = 10k and 100k recipients (1M with --1m).
#   scripts/bench.sh [--1m]          (DIRSYNC_BENCH_RUNS=5 runs of each, alternating)
# Installs what it needs (slapd, ldap-utils, GNU time; python ldap3 in a venv), prints the table
# and the targets as met or missed, and keeps everything under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a sizes <<< "${DIRSYNC_BENCH_SIZES:-10000 100000}"
[ "${1:-}" = "--1m" ] && sizes+=(1000000)
runs=${DIRSYNC_BENCH_RUNS:-5}

packages=()
for p in slapd ldap-utils time openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || packages+=("$p")
done
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
venv=target/bench/venv
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import ldap3" 2>/dev/null || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check ldap3==2.9.1
}
cargo build --locked --release
dirsync=$PWD/target/release/dirsync

root=$PWD/target/bench/results
rm -rf "$root"
mkdir -p "$root"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

base="OU=AADDC Users,DC=example,DC=com"
reader="CN=dirsync-reader,DC=example,DC=com"
export DIRSYNC_BENCH_PASSWORD="Bench-Reader-Pa55"
attrs=(objectClass proxyAddresses mail userAccountControl)
filter="(|(objectClass=user)(objectClass=group)(objectClass=contact))"

for n in "${sizes[@]}"; do
    d=$root/n$n
    mkdir -p "$d/db"
    echo "== N=$n: generating and loading"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$d/ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -out "$d/server.pem" -days 2 -extfile "$d/ext" 2>/dev/null
    cat > "$d/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $PWD/tests/data/slapd/ad.schema
pidfile $d/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile $d/server.pem
TLSCertificateKeyFile $d/server.key
sizelimit size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
database mdb
maxsize 4294967296
suffix "DC=example,DC=com"
rootdn "CN=admin,DC=example,DC=com"
directory $d/db
dbnosync
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
CONF
    printf 'dn: DC=example,DC=com\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' > "$d/data.ldif"
    printf 'dn: %s\nobjectClass: organizationalUnit\nou: AADDC Users\n\n' "$base" >> "$d/data.ldif"
    printf 'dn: %s\nobjectClass: person\ncn: dirsync-reader\nsn: reader\nuserPassword: %s\n\n' "$reader" "$DIRSYNC_BENCH_PASSWORD" >> "$d/data.ldif"
    python3 scripts/bench/gen_directory.py "$n" "$d/directory.ldif"
    cat "$d/directory.ldif" >> "$d/data.ldif"
    slapadd -q -f "$d/slapd.conf" -l "$d/data.ldif"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    slapd -f "$d/slapd.conf" -h "ldaps://127.0.0.1:$port/"
    for _ in $(seq 100); do [ -f "$d/slapd.pid" ] && break; sleep 0.1; done
    pids+=("$(cat "$d/slapd.pid")")
    (umask 077; printf "%s" "$DIRSYNC_BENCH_PASSWORD" > "$d/pw")
    cat > "$d/dirsync.toml" <<CONF
customer_id = "12345"
domains = ["example.com", "example.de"]
state_dir = "state"
[source]
type = "ldap"
url = "ldaps://127.0.0.1:$port"
bind_dn = "$reader"
password_env = "DIRSYNC_BENCH_PASSWORD"
ca_file = "ca.pem"
base_dn = "$base"
page_size = 1000
[output]
path = "out/retarus.map"
CONF
    # The same directory with a membership rule: memberOf read and kept for every user, nested
    # groups resolved (what a profile-by-group deployment does).
    { cat "$d/dirsync.toml"; printf '[profiles]\n[[profiles.rule]]\nwhen = { member_of = "Group 1", transitive = true }\nprofile = "Group One"\n'; } > "$d/rules.toml"
    rm -f "$d/python.addresses" "$d"/time.*
    echo "== N=$n: $runs runs of each, alternating"
    for r in $(seq "$runs"); do
        /usr/bin/time -v -o "$d/time.dirsync.$r" "$dirsync" sync --config "$d/dirsync.toml" --dry-run 2> "$d/dirsync.stderr"
        if [ "$n" -eq 100000 ]; then
            /usr/bin/time -v -o "$d/time.rules.$r" "$dirsync" sync --config "$d/rules.toml" --dry-run 2> "$d/rules.stderr"
        fi
        LDAPTLS_CACERT="$d/ca.pem" /usr/bin/time -v -o "$d/time.ldapsearch.$r" \
            ldapsearch -LLL -o ldif-wrap=no -H "ldaps://127.0.0.1:$port" -D "$reader" -y "$d/pw" -b "$base" \
            -E pr=1000/noprompt "$filter" "${attrs[@]}" > /dev/null
        # python-ldap3 at 1M takes more than 7 minutes a run: only with DIRSYNC_BENCH_PYTHON_1M=1.
        if [ "$n" -le 100000 ] || [ "${DIRSYNC_BENCH_PYTHON_1M:-0}" = 1 ]; then
            /usr/bin/time -v -o "$d/time.python.$r" "$venv/bin/python" scripts/bench/python_ldap3_export.py \
                "ldaps://127.0.0.1:$port" "$d/ca.pem" "$reader" DIRSYNC_BENCH_PASSWORD "$base" "$d/python.addresses"
        fi
    done
    # dirsync and the python export must have found the same addresses.
    tr -d '\r' < "$d/out/retarus.map" | awk -F'\t' '$2 == "DIR:" { print $3 }' | sort > "$d/dirsync.addresses"
    if [ ! -f "$d/python.addresses" ]; then
        echo "   $(wc -l < "$d/dirsync.addresses") addresses from dirsync (python-ldap3 not run at N=$n)"
    elif ! cmp -s "$d/dirsync.addresses" <(sort "$d/python.addresses"); then
        echo "dirsync and python-ldap3 found different addresses at N=$n: see $d" >&2
        exit 1
    else
        echo "   same $(wc -l < "$d/dirsync.addresses") addresses from dirsync and python-ldap3"
    fi
    kill "$(cat "$d/slapd.pid")"
    rm -rf "$d/db" "$d/data.ldif"
done
echo
python3 scripts/bench/report.py "$root" | tee "$root/report.md"
