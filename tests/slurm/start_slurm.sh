#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1 for the tests, everything (munge key and socket, slurm.conf, state, logs,
# pid files) in one folder: `start_slurm.sh start DIR` / `start_slurm.sh stop DIR`. Clients find it through
# SLURM_CONF=DIR/slurm.conf. Needs root and Debian's `slurm-wlm munge` (slurmctld, slurmd, munged).
set -euo pipefail
action=${1:?usage: start_slurm.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: start_slurm.sh start|stop DIR}")
ctld_port=${GLASSML_SLURMCTLD_PORT:-26817}
slurmd_port=${GLASSML_SLURMD_PORT:-26818}
ssh_port=${GLASSML_SSHD_PORT:-26822}

stop() {
    # cancel what still runs, then kill job processes that outlived it (proctrack/linuxproc loses children that were
    # re-parented, and a stopped slurmd kills nothing): they carry this cluster's SLURM_CONF and a SLURM_JOB_ID
    [ -f "$dir/slurm.conf" ] && SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --full --user root 2>/dev/null || true
    for environ in /proc/[0-9]*/environ; do
        pid=${environ#/proc/}; pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        vars=$(tr '\0' '\n' 2>/dev/null < "$environ") || continue
        if grep -qx "SLURM_CONF=$dir/slurm.conf" <<< "$vars" && grep -q '^SLURM_JOB_ID=' <<< "$vars"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    for name in sshd slurmd slurmctld munged; do
        ours "$name" && kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
    done
    for name in sshd slurmd slurmctld munged; do  # wait for them, so that a restart finds the ports free
        for _ in $(seq 50); do
            ours "$name" || break
            sleep 0.1
        done
        rm -f "$dir/$name.pid"
    done
}

# whether DIR/NAME.pid names a live NAME: a pid file left by an earlier session may name a process that has since
# reused the number (a test worker, PostgreSQL, ...), which must not be killed
ours() {
    local pid
    pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

if [ "$action" = stop ]; then
    stop
    exit 0
fi
[ "$action" = start ] || { echo "unknown action $action (start or stop)" >&2; exit 2; }
# a cluster left by a killed test session holds the ports: stop it first (it is named in this file)
last=/tmp/glassml-test-slurm.last
if [ -f "$last" ] && [ "$(cat "$last")" != "$dir" ] && [ -d "$(cat "$last")" ]; then
    "$0" stop "$(cat "$last")"
fi
echo "$dir" > "$last"

PATH=$PATH:/usr/sbin  # the daemons, for a PATH without it
for exe in munged slurmctld slurmd; do
    command -v "$exe" >/dev/null || { echo "$exe not found: apt-get install slurm-wlm munge" >&2; exit 3; }
done
mkdir -p "$dir"/{munge,state,spool,log}
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1k count=1 status=none
chmod 400 "$dir/munge/munge.key"

cpus=$(nproc --all)  # not `nproc`: it follows OMP_NUM_THREADS
# slurmd refuses a node that claims more memory than it has: 80 % of it, at most 20000 MB
memory=$(awk '/MemTotal/ {m = int($2 / 1024 * 0.8); print (m > 20000 ? 20000 : m)}' /proc/meminfo)
cat > "$dir/slurm.conf" <<EOF
ClusterName=glassml-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# a container has no cgroups to track or bind tasks with
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
# quick reactions: the tests cancel jobs and let them run out of time
KillWait=2
MinJobAge=10
InactiveLimit=0
OverTimeLimit=0
GresTypes=gpu
# two GPUs that are not there: only for `sbatch --test-only` of GPU job scripts (gres.conf: /dev/null and /dev/zero)
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
printf '%s\n' 'AutoDetect=off' 'NodeName=localhost Name=gpu File=/dev/null' \
    'NodeName=localhost Name=gpu File=/dev/zero' > "$dir/gres.conf"
export SLURM_CONF=$dir/slurm.conf

munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
# sshd on 127.0.0.1 for the core.ssh computer (when openssh-server is installed): its own host key, root's login
# with DIR/id_ed25519 only, and SLURM_CONF in the sessions
sshd=$(command -v sshd || true)
if [ -n "$sshd" ]; then
    [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"
    [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    cat > "$dir/sshd_config" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv SLURM_CONF=$SLURM_CONF
Subsystem sftp internal-sftp
EOF
    mkdir -p /run/sshd  # sshd's privilege separation directory
    "$sshd" -f "$dir/sshd_config" -E "$dir/log/sshd.log"
    echo "SSH_PORT=$ssh_port"
fi
for _ in $(seq 100); do  # ready when the node takes jobs
    if sinfo -h -n localhost -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "the Slurm node did not come up; logs in $dir/log:" >&2
tail -n 5 "$dir"/log/*.log >&2 || true
stop
exit 1
