package tun

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// MaxQueues is the most queues a TUN interface can have (the kernel's
// MAX_TAP_QUEUES).
const MaxQueues = 256

// vnetHdrLen is the size of struct virtio_net_hdr, the header wireguard's
// tun package reads and writes in front of every packet (and the kernel's
// default TUNSETVNETHDRSZ).
const vnetHdrLen = 10

const (
	// tcpOffloads are required with IFF_VNET_HDR (Linux 2.6.27).
	tcpOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	// udpOffloads (USO) are used when the kernel has them (Linux 6.2).
	udpOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6
)

// CreateMultiQueue creates (or attaches to) the TUN interface name with
// queues queues, one Device per queue, so that each shard of a multi-core
// data plane reads and writes its own queue. name and mtu are as for Create;
// it needs CAP_NET_ADMIN. With queues == 1 it is Create.
//
// Every queue is opened with IFF_TUN|IFF_NO_PI|IFF_VNET_HDR|IFF_MULTI_QUEUE
// and offloads (TUN_F_CSUM|TSO4|TSO6, plus USO4|USO6 on Linux 6.2 and later),
// so each Device splits the kernel's TSO/USO super-packets on Read, coalesces
// TCP and UDP packets on Write, and needs an offset of at least Headroom,
// like a Device from Create. If the kernel refuses IFF_VNET_HDR or the
// offloads, all queues are opened without them: Read and Write then move one
// packet per call (BatchSize 1).
//
// The kernel picks the queue for each packet it sends to the interface by a
// hash of the flow, and sends a flow's packets to the queue that last wrote
// a packet of that flow. Unlike Create's Device, a queue does not watch the
// link state. The interface disappears when the last queue is closed (unless
// it is persistent).
func CreateMultiQueue(name string, mtu, queues int) ([]Device, error) {
	if queues == 1 {
		dev, err := Create(name, mtu)
		if err != nil {
			return nil, err
		}
		return []Device{dev}, nil
	}
	return createQueues(name, mtu, queues, true)
}

// createQueues opens the queues; vnetHdr false forces the plain fallback.
func createQueues(name string, mtu, queues int, vnetHdr bool) ([]Device, error) {
	if queues < 1 || queues > MaxQueues {
		return nil, fmt.Errorf("tun: create %q: %d queues not in [1, %d]", name, queues, MaxQueues)
	}
	devs := make([]Device, 0, queues)
	closeAll := func() {
		for _, d := range devs {
			d.Close()
		}
	}
	ifname := name
	for i := range queues {
		dev, got, err := openQueue(ifname, vnetHdr)
		if err != nil && i == 0 && vnetHdr && !errors.Is(err, errNoDevice) {
			// IFF_VNET_HDR or the offloads are refused: the flag is
			// per device, so every queue goes without it.
			vnetHdr = false
			dev, got, err = openQueue(ifname, false)
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("tun: create %q: queue %d: %w", name, i, err)
		}
		ifname = got
		devs = append(devs, dev)
	}
	if err := setMTU(ifname, mtu); err != nil {
		closeAll()
		return nil, fmt.Errorf("tun: create %q: %w", name, err)
	}
	return devs, nil
}

// errNoDevice marks failures to open the clone device itself.
var errNoDevice = errors.New("cannot open /dev/net/tun")

// openQueue attaches one queue to interface name (a pattern such as "tun%d"
// creates a new interface) and returns it with the interface's name.
func openQueue(name string, vnetHdr bool) (Device, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", errNoDevice, err)
	}
	ifname, err := setupQueue(fd, name, vnetHdr)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	// From here on the fd belongs to wireguard's device. Everything that can
	// fail has been done above: what CreateUnmonitoredTUNFromFD does itself
	// (TUNGETIFF, the same TUNSETOFFLOAD) succeeded already, and if it
	// fails anyway, the finalizer of its os.File closes the fd.
	dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		return nil, "", fmt.Errorf("wrap queue: %w", err)
	}
	return &kernelDevice{dev: dev}, ifname, nil
}

// setupQueue configures a fresh /dev/net/tun fd as a queue of name. The fd is
// made non-blocking only after TUNSETIFF: one handed to the netpoller before
// TUNSETIFF reports EPOLLERR (golang/go#30426).
func setupQueue(fd int, name string, vnetHdr bool) (string, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return "", fmt.Errorf("interface name: %w", err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return "", fmt.Errorf("TUNSETIFF: %w", err)
	}
	if vnetHdr {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
			return "", fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tcpOffloads); err != nil {
			return "", fmt.Errorf("TUNSETOFFLOAD: %w", err)
		}
		// Optional; wireguard's device probes it again and uses UDP GRO
		// on Write only where it succeeds.
		_ = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tcpOffloads|udpOffloads)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return "", fmt.Errorf("set non-blocking: %w", err)
	}
	return ifr.Name(), nil
}

// setMTU sets the MTU of interface name.
func setMTU(name string, mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("set mtu %d: %w", mtu, err)
	}
	return nil
}
