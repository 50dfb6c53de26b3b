package netstack_test

import (
	"log/slog"

	"weft/handlers"
	"weft/netstack"
	"weft/tun"
)

// The two ClientParams hooks plug a Stack into the client handler in place
// of the kernel TUN: no root needed.
func Example_clientParams() {
	st, err := netstack.New(netstack.Options{MTU: 1500, Logger: slog.Default()})
	if err != nil {
		return
	}
	defer st.Close()
	params := handlers.ClientParams{
		OpenTUN:   func(string, int) (tun.Device, error) { return st.Device(), nil },
		Configure: func(_ string, c tun.LinkConfig) error { return st.Configure(c) },
		// Remotes, Session, ... as for the kernel TUN.
	}
	_ = params
	// Output:
}
