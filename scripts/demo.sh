#!/usr/bin/env bash
# demo.sh — README command 1: installs what is missing, builds the release
# configuration, starts the relay with a demo room (examples/demo.c
# evaluated in it) and prints the links to open. Ctrl-C stops the relay.
# Environment: PORT (default 7888), BIND (default 127.0.0.1; 0.0.0.0 to
# let phones on the LAN join), DATA (default build/demo-data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
bin=$PWD/build/release/cli/patchbay
port=${PORT:-7888}
bind=${BIND:-127.0.0.1}
data=${DATA:-$PWD/build/demo-data}
host=$bind
[[ $host == 0.0.0.0 ]] && host=$(hostname -I 2>/dev/null | awk '{print $1}')
[[ -n $host ]] || host=127.0.0.1
url=http://$host:$port

"$bin" keygen --data "$data" >/dev/null 2>&1
"$bin" serve --port "$port" --bind "$bind" --data "$data" &
relay=$!
trap 'kill -TERM $relay 2>/dev/null; wait $relay' INT TERM
# wait until it answers (or died)
for _ in $(seq 1 100); do
	kill -0 $relay 2>/dev/null || { wait $relay; exit 1; }
	(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
	sleep 0.1
done

owner=$("$bin" token --data "$data" --room demo --role owner --name you -q)
runtime=$("$bin" token --data "$data" --room demo --role runtime --name screen --ttl 7d -q)
key=$(cat "$data/relay.pub")
if ! "$bin" log --data "$data" --room demo 2>/dev/null | grep -q '^ *1 '; then
	"$bin" eval --url "ws://127.0.0.1:$port" --token "$owner" --room demo \
		--wait-ms 0 examples/demo.c
fi
cat <<MSG

patchbay is running on $url (room "demo", data in $data)

  editor (owner):  $url/editor.html#room=demo&token=$owner&key=$key
  runtime screen:  $url/runtime.html#room=demo&token=$runtime&key=$key

Open the editor link in Chromium or Firefox: change a number and press
Shift-Enter. Open the runtime link on a projector or a phone (start with
BIND=0.0.0.0 for phones on the LAN): every screen changes at the same moment.

  from a shell:    export PATCHBAY_URL=ws://127.0.0.1:$port PATCHBAY_TOKEN=$owner
                   $bin watch --room demo examples/demo.c
                   $bin log --data $data --room demo
  headless:        $bin runtime '$url/runtime.html#room=demo&token=$runtime&key=$key'

Ctrl-C stops the relay.
MSG
wait $relay
