#!/bin/sh
# Entry point of the `samba` service in docker/compose.yml: writes smb.conf from the
# environment (the same settings as the test harness's private smbd, peers/src/samba.rs), adds
# the user to Samba's passdb and runs smbd in the foreground, logging to stdout.
set -eu

port=${SMB_PORT:-4445}
user=${SMB_USER:-smbtest}
password=${SMB_PASSWORD:-Smb-Test-Passw0rd}
case "$port" in
    445 | 139 | '' | *[!0-9]*)
        echo "samba-entrypoint: refusing SMB_PORT=$port (never 445 or 139; a number)" >&2
        exit 2
        ;;
esac

# Every directory smbd writes, in one writable place: with the host network, the defaults
# under /run and /var/lib/samba/bind-dns are not all created by the image.
state=/var/lib/smb-signing
for dir in lock state cache private run ncalrpc binddns log; do
    mkdir -p "$state/$dir"
done

{
    cat <<CONF
# Written by docker/samba-entrypoint.sh at container start.
[global]
    server role = standalone server
    workgroup = WORKGROUP
    netbios name = SMBDOCKER$port
    smb ports = $port
    disable netbios = yes
    server signing = ${SMB_SIGNING:-mandatory}
    server min protocol = ${SMB_MIN_PROTOCOL:-SMB2_02}
    server max protocol = ${SMB_MAX_PROTOCOL:-SMB3_11}
    server smb encrypt = off
    smb2 max read = ${SMB_MAX_IO:-8388608}
    smb2 max write = ${SMB_MAX_IO:-8388608}
    smb2 max trans = ${SMB_MAX_IO:-8388608}
    passdb backend = tdbsam
    map to guest = never
    restrict anonymous = 2
    lock directory = $state/lock
    state directory = $state/state
    cache directory = $state/cache
    private dir = $state/private
    pid directory = $state/run
    ncalrpc dir = $state/ncalrpc
    binddns dir = $state/binddns
    log file = $state/log/log.%m
    max log size = 0
    log level = 1
    load printers = no
    printcap name = /dev/null
    disable spoolss = yes
    usershare max shares = 0
CONF
    if [ -n "${SMB_INTERFACES:-}" ]; then
        printf '    interfaces = %s\n    bind interfaces only = yes\n' "$SMB_INTERFACES"
    fi
    if [ -n "${SMB_SIGNING_ALGORITHMS:-}" ]; then
        printf '    server smb3 signing algorithms = %s\n' "$SMB_SIGNING_ALGORITHMS"
    fi
    cat <<CONF

[data]
    path = /srv/data
    read only = no
    valid users = $user
    create mask = 0644
    directory mask = 0755
CONF
} > /etc/samba/smb.conf

id "$user" > /dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$user"
mkdir -p /srv/data
chown "$user:" /srv/data
chmod 0700 /srv/data
printf '%s\n%s\n' "$password" "$password" | smbpasswd -a -s "$user" > /dev/null
smbd --version
exec smbd --foreground --no-process-group --debug-stdout
