package tun

import (
	"fmt"
	"sync"
)

// ChannelDevice is an in-memory Device for tests: packets sent on Inbound are
// what Read returns (as if the kernel routed them into the tunnel), and every
// packet passed to Write is copied onto Outbound (as if delivered to the
// kernel). It needs no privileges and honours offsets like a real device.
type ChannelDevice struct {
	// Inbound feeds Read. Tests send packets here.
	Inbound chan []byte
	// Outbound receives a copy of every packet written. Tests read it; Write
	// blocks while it is full.
	Outbound chan []byte

	name  string
	mtu   int
	batch int

	closeOnce sync.Once
	closed    chan struct{}
}

// NewChannelDevice returns a ChannelDevice with the given name, MTU and batch
// size (at least 1), with channels of capacity 64.
func NewChannelDevice(name string, mtu, batch int) *ChannelDevice {
	return &ChannelDevice{
		Inbound:  make(chan []byte, 64),
		Outbound: make(chan []byte, 64),
		name:     name,
		mtu:      mtu,
		batch:    max(batch, 1),
		closed:   make(chan struct{}),
	}
}

// Read blocks for one packet from Inbound, then takes any further packets
// already queued, up to min(len(bufs), BatchSize()).
func (c *ChannelDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	limit := min(len(bufs), len(sizes), c.batch)
	if limit == 0 {
		return 0, nil
	}
	select {
	case <-c.closed:
		return 0, fmt.Errorf("tun: %s: read: %w", c.name, ErrClosed)
	default:
	}
	var pkt []byte
	select {
	case pkt = <-c.Inbound:
	case <-c.closed:
		return 0, fmt.Errorf("tun: %s: read: %w", c.name, ErrClosed)
	}
	n := 0
	for {
		if len(pkt) > len(bufs[n])-offset {
			return n, fmt.Errorf("tun: %s: read: packet of %d bytes does not fit buffer %d at offset %d", c.name, len(pkt), len(bufs[n]), offset)
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
		if n == limit {
			return n, nil
		}
		select {
		case pkt = <-c.Inbound:
		default:
			return n, nil
		}
	}
}

// Write copies each bufs[i][offset:] onto Outbound.
func (c *ChannelDevice) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-c.closed:
		return 0, fmt.Errorf("tun: %s: write: %w", c.name, ErrClosed)
	default:
	}
	for i, b := range bufs {
		if offset > len(b) {
			return i, fmt.Errorf("tun: %s: write: offset %d beyond buffer of %d", c.name, offset, len(b))
		}
		p := append([]byte(nil), b[offset:]...)
		select {
		case c.Outbound <- p:
		case <-c.closed:
			return i, fmt.Errorf("tun: %s: write: %w", c.name, ErrClosed)
		}
	}
	return len(bufs), nil
}

// BatchSize returns the batch size given to NewChannelDevice.
func (c *ChannelDevice) BatchSize() int { return c.batch }

// Name returns the name given to NewChannelDevice.
func (c *ChannelDevice) Name() (string, error) { return c.name, nil }

// MTU returns the MTU given to NewChannelDevice.
func (c *ChannelDevice) MTU() (int, error) { return c.mtu, nil }

// Close makes blocked and later Reads and Writes fail with ErrClosed. The
// channels are left open.
func (c *ChannelDevice) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
