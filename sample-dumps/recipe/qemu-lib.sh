# Shared by the run-qemu-*.sh recipes (sourced, not run).
#
# start_qemu_until_ready RUN_DIR MARKER QEMU-COMMAND...
#   records the command in RUN_DIR/qemu.cmd, starts it in the background
#   (its pid in $qpid), and waits until RUN_DIR/console.log contains MARKER
#   (at most 10 minutes); fails if QEMU dies first.
start_qemu_until_ready() {
	_run=$1; _marker=$2; shift 2
	echo "$*" > "$_run/qemu.cmd"
	start=$(date +%s)
	"$@" & qpid=$!
	_i=0
	until grep -aq "$_marker" "$_run/console.log" 2>/dev/null; do
		sleep 2; _i=$((_i+1))
		[ $_i -lt 300 ] || { echo "guest never became ready"; kill "$qpid"; return 1; }
		kill -0 "$qpid" 2>/dev/null || { echo "qemu died"; return 1; }
	done
	echo "guest ready after $(( $(date +%s) - start )) s"
}
