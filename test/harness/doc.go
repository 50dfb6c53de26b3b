// Package harness runs OpenVPN interop labs for weft's tests: a pair of network
// namespaces joined by a veth (IPv4 and IPv6), an in-Go test PKI and static
// keys, an openvpn server runner, a client runner (openvpn or weft, reading the
// same OpenVPN client config), and traffic checks (ping and a checksummed bulk
// TCP transfer run from inside the namespaces).
//
// Everything it creates is named after the test process PID and a counter, and
// is removed in t.Cleanup: processes are killed by PID, namespaces deleted by
// name. Tests that need root, /dev/net/tun, ip or openvpn skip loudly.
package harness
