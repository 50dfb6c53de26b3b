// Package tun provides weft's kernel TUN device and its link configuration.
//
// Create opens a Linux TUN interface through golang.zx2c4.com/wireguard/tun,
// which enables IFF_VNET_HDR and kernel offloads: Read may split one TSO/USO
// super-packet into several packets, and Write may coalesce packets (GRO)
// before handing them to the kernel. Both need Headroom bytes in front of
// every packet, which is why every buffer passed to Read and Write carries an
// offset. Configure sets MTU, addresses, link state and routes via netlink.
//
// CreateMultiQueue opens one interface with several queues (IFF_MULTI_QUEUE),
// one Device per queue, each with the same offloads, so that every shard of
// a multi-core data plane reads and writes its own queue.
//
// ChannelDevice is an in-memory Device for tests that must run without root.
//
// Not implemented yet: TAP, eBPF queue steering (TUNSETSTEERINGEBPF), and
// reporting link up/down events.
package tun

import (
	"errors"
	"fmt"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Headroom is the minimum offset callers must pass to Read and Write of a
// Device from Create: the kernel's 10-byte virtio_net_hdr is read into and
// written from the bytes just before each packet. It is rounded up to 16 so
// that packets stay aligned; callers typically use a larger offset that also
// leaves room for their own (OpenVPN) header.
const Headroom = 16

// Device is a batched packet device. It has the shape of wireguard-go's
// tun.Device (without File and Events), so a wireguard tun.Device satisfies
// it.
type Device interface {
	// Read reads one or more packets into bufs[i][offset:] and sets sizes[i]
	// to each packet's length, returning the number of packets. It blocks
	// until at least one packet is available. len(sizes) must be at least
	// len(bufs). A kernel device may split one offloaded super-packet into
	// up to BatchSize MTU-sized packets, so pass BatchSize buffers of at
	// least offset+MTU bytes each.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes the packets bufs[i][offset:]. The device may modify the
	// buffers (including the offset bytes before each packet). It returns
	// the number of packets written.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read returns and the preferred
	// number of packets per Write.
	BatchSize() int
	// Name returns the interface name.
	Name() (string, error)
	// MTU returns the interface MTU.
	MTU() (int, error)
	// Close closes the device; blocked Reads return an error.
	Close() error
}

// Create creates (or attaches to) the TUN interface name with the given MTU.
// An empty name, or a pattern like "tun%d", lets the kernel choose; Name
// reports the result. Reads and writes need an offset of at least Headroom.
// It needs CAP_NET_ADMIN.
func Create(name string, mtu int) (Device, error) {
	dev, err := wgtun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("tun: create %q: %w", name, err)
	}
	// wireguard's device reports link events on an unbuffered-in-practice
	// channel (capacity 5) and its listener blocks once it is full; nobody
	// reads them here yet, so drain them until Close closes the channel.
	go func() {
		for range dev.Events() {
		}
	}()
	return &kernelDevice{dev: dev}, nil
}

// kernelDevice adapts wireguard's device: its Write returns a byte count,
// while Device.Write returns a packet count.
type kernelDevice struct {
	dev wgtun.Device
}

func (k *kernelDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < Headroom {
		return 0, fmt.Errorf("tun: read offset %d below Headroom %d", offset, Headroom)
	}
	n, err := k.dev.Read(bufs, sizes, offset)
	if err != nil {
		return n, fmt.Errorf("tun: read: %w", err)
	}
	return n, nil
}

func (k *kernelDevice) Write(bufs [][]byte, offset int) (int, error) {
	if offset < Headroom {
		return 0, fmt.Errorf("tun: write offset %d below Headroom %d", offset, Headroom)
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if _, err := k.dev.Write(bufs, offset); err != nil {
		return 0, fmt.Errorf("tun: write: %w", err)
	}
	return len(bufs), nil
}

func (k *kernelDevice) BatchSize() int { return k.dev.BatchSize() }

func (k *kernelDevice) Name() (string, error) {
	n, err := k.dev.Name()
	if err != nil {
		return "", fmt.Errorf("tun: name: %w", err)
	}
	return n, nil
}

func (k *kernelDevice) MTU() (int, error) {
	m, err := k.dev.MTU()
	if err != nil {
		return 0, fmt.Errorf("tun: mtu: %w", err)
	}
	return m, nil
}

func (k *kernelDevice) Close() error {
	if err := k.dev.Close(); err != nil {
		return fmt.Errorf("tun: close: %w", err)
	}
	return nil
}

// ErrClosed is returned (wrapped) by ChannelDevice after Close.
var ErrClosed = errors.New("tun: device closed")

// Coalesces reports whether d's Write may coalesce packets (GRO), which it does by
// appending payloads to the first packet's buffer: buffers passed to such a device
// should have room for a whole super-packet (offset + 65535 bytes of capacity).
func Coalesces(d Device) bool {
	_, ok := d.(*kernelDevice)
	return ok
}
