#!/bin/bash
# The hand-written baseline that bench/run_benchmarks.py measures the harness against: one
# mod_wsgi-express server, then N times "touch the WSGI script, curl until a new daemon answers".
#
# It does what the harness's script-touch mechanism does, and no more: the same Apache options that
# matter for timing (the harness's --shutdown-timeout 3 --graceful-timeout 2, --log-level info, one
# named daemon group with the app in %{GLOBAL}, WSGIScriptReloading On), the same user (the caller
# runs this as the server user), and a reload counts only when the body names a daemon pid other
# than the one before the touch, with the right body. Timestamps go to stdout for the caller.
#
# usage: touch_and_curl.sh EXPRESS DIR PORT CYCLES
#   DIR holds app/app.wsgi (pid_app.wsgi); the server root is DIR/server.
set -u
express=$1 dir=$2 port=$3 cycles=$4
root=$dir/server script=$dir/app/app.wsgi include=$dir/include.conf
url="http://127.0.0.1:$port/app/"
now() { date +%s.%N; }
fail() { echo "error=$1"; exit 2; }

start=$(now)
cat >"$include" <<CONF
WSGIScriptAlias /app "$script" process-group=loop application-group=%{GLOBAL}
<Directory "$dir/app">
    WSGIScriptReloading On
    Require all granted
</Directory>
CONF
"$express" setup-server --server-root "$root" --host 127.0.0.1 --port "$port" --include-file "$include" \
    --log-level info --locale C.UTF-8 --working-directory "$dir/app" --shutdown-timeout 3 --graceful-timeout 2 \
    --process-group loop --application-group '%{GLOBAL}' >"$dir/setup.log" 2>&1 || fail setup-server
"$root/apachectl" start >"$dir/apachectl.log" 2>&1 || fail apachectl-start

# Ready when the app answers; remember which daemon did.
until body=$(curl -sf --max-time 2 "$url") && [[ $body =~ ^pid=[0-9]+$ ]]; do
    (( $(date +%s) - ${start%.*} > 30 )) && fail "no answer within 30s"
    sleep 0.05
done
ready=$(now)
pid=${body#pid=}
parent=$(cat "$root/httpd.pid")
polls=0

for ((i = 1; i <= cycles; i++)); do
    began=$(now)
    touch "$script"
    # The request after the touch restarts the daemon; poll until the answer comes from a new one.
    until body=$(curl -sf --max-time 10 "$url") && [[ $body =~ ^pid=[0-9]+$ && ${body#pid=} != "$pid" ]]; do
        (( $(date +%s) - ${began%.*} > 20 )) && fail "cycle $i: no new daemon within 20s"
        polls=$((polls + 1))
        sleep 0.05
    done
    pid=${body#pid=}
    echo "cycle $i $began $(now) $pid"
done
loop_end=$(now)

"$root/apachectl" stop >>"$dir/apachectl.log" 2>&1
# Stopped when the Apache parent has exited (not when its pid file is gone: that goes first). It is
# daemonized, so it stays a zombie until init reaps it: a zombie has exited.
while kill -0 "$parent" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$parent/status"; do sleep 0.05; done
echo "result start=$start ready=$ready loop_end=$loop_end end=$(now) polls=$polls"
