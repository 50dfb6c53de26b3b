// Command loadgen is weft's server scale benchmark: it runs many OpenVPN client
// sessions in one process, each one a weft ovpn.Session (the pure engine, client
// role, tls-crypt, EC certificates) driven by weft's reactor, against one server
// started as a child process: `weft server` or Debian's `openvpn --mode server`
// with the same PKI and configuration.
//
//	loadgen pki    -dir DIR
//	loadgen run    -server weft|openvpn -proto udp|tcp -dir DIR -out FILE.json [flags]
//	loadgen report -dir RESULTS_DIR [-quick]
//
// `run` measures, in this order: the server's RSS at start; the time to connect N
// clients with at most -conc handshakes in flight (full handshakes per second,
// handshake latency, server CPU per handshake, control packets per handshake as a
// retransmission indicator); the server's RSS with N idle clients and its CPU over
// the idle window (keepalive 10 60: a ping every 10 s each way per client); then,
// optionally, a handshake-rate sweep at other concurrencies with the N clients
// still connected. Everything is bounded by -max-runtime. It needs root for the
// servers' TUN device: bench/scale/run.sh runs it inside a network namespace.
//
// `report` collects the run files of a results directory into summary.md and
// results.json and checks the targets.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen pki|run|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pki":
		err = cmdPKI(os.Args[2:])
	case "run":
		err = cmdRun(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// startWatchdog ends the process after d, whatever else happens (the server child
// follows through Pdeathsig), so a stuck run cannot hold the machine.
func startWatchdog(d time.Duration) {
	time.AfterFunc(d, func() {
		fmt.Fprintf(os.Stderr, "loadgen: max-runtime %s reached, exiting\n", d)
		os.Exit(3)
	})
}
