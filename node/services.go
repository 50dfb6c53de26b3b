package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"weft/forward"
	"weft/socks5"
)

// DNSServers returns the DNS servers the VPN server pushed (dhcp-option DNS/DNS6),
// on port 53.
func (n *Node) DNSServers() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return socks5.DNSServers(n.dhcp)
}

// ServeSOCKS5 runs a SOCKS5 server on the host address addr whose connections go
// through the tunnel; domain names are resolved through the pushed DNS servers when
// there are any. It returns the bound address; the server stops when ctx ends or the
// node closes.
func (n *Node) ServeSOCKS5(ctx context.Context, addr string) (net.Addr, error) {
	if n.stack == nil {
		return nil, ErrKernelTUN
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: SOCKS5 listener: %w", err)
	}
	srv := &socks5.Server{
		Dial: n.Dial,
		ListenPacket: func(_ context.Context, network, address string) (net.PacketConn, error) {
			return n.ListenPacket(network, address)
		},
		Resolver: lazyResolver{n: n},
		Logger:   n.opts.Logger,
	}
	go srv.Serve(l)
	n.onClose(func() { srv.Close(); l.Close() })
	go func() {
		<-ctx.Done()
		srv.Close()
		l.Close()
	}()
	return l.Addr(), nil
}

// lazyResolver resolves through the DNS servers pushed at the time of the lookup
// (a reconnect may change them), falling back to the system resolver.
type lazyResolver struct{ n *Node }

func (r lazyResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if servers := r.n.DNSServers(); len(servers) > 0 {
		return socks5.DNSResolver(servers, r.n.Dial).LookupNetIP(ctx, network, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// StartForwards runs forward and reverse-forward rules (config directive arguments)
// until ctx ends or the node closes. forwards relay host connections into the
// tunnel; reverses expose host services on tunnel addresses.
func (n *Node) StartForwards(ctx context.Context, forwards, reverses [][]string) error {
	if n.stack == nil {
		return ErrKernelTUN
	}
	var rules []forward.Rule
	for _, a := range forwards {
		r, err := forward.ParseDirective("forward", a)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	for _, a := range reverses {
		r, err := forward.ParseDirective("reverse-forward", a)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	fctx, cancel := context.WithCancel(ctx)
	n.onClose(cancel)
	vpn := forward.StackNetwork(n.stack)
	for _, r := range rules {
		r.Logger = n.opts.Logger
		go func() {
			// A reverse-forward listens on a tunnel address, which exists only once
			// the tunnel is up; a rule that fails (the address went away after a
			// reconnect) is retried.
			if r.Reverse {
				if err := n.WaitConnected(fctx); err != nil {
					return
				}
			}
			for fctx.Err() == nil {
				err := forward.Run(fctx, r, forward.Host{}, vpn)
				if err == nil || fctx.Err() != nil {
					return
				}
				n.opts.Logger.Warn("forward failed, retrying in 1s", "rule", r.String(), "err", err)
				select {
				case <-fctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	return nil
}
