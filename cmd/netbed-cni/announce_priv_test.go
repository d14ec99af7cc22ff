package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/netbed/netbed/internal/testutil"
)

// On ADD the pod announces its addresses from inside its namespace, as
// the reference plugins do after configuring them: the host's bridge sees
// a gratuitous ARP (request, sender = target = the pod's IPv4 address,
// broadcast) and an unsolicited neighbour advertisement for its IPv6
// address, both from the pod's MAC.
func TestADDAnnouncesThePod(t *testing.T) {
	testutil.RequireRoot(t)
	rc := startController(t, "10.31.0.0/24")
	host, pod := newNS(t), newNS(t)
	host.addrAdd(t, "br-int", netip.MustParsePrefix("10.31.0.1/24"), true)
	var fd int
	host.in(t, func() {
		var err error
		// ETH_P_ALL in network byte order: every frame br-int receives.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Fatal(err)
		}
		ifi, err := net.InterfaceByName("br-int")
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			t.Fatal(err)
		}
	})
	defer unix.Close(fd)
	run := newCNIRun(t, confJSON(t, "1.1.0", map[string]any{"controllerURL": rc.unixURL, "host": "host-a"}))
	var res *types100.Result
	host.in(t, func() {
		r, err := run.cfg.AddNetwork(context.Background(), run.conf, rt("c1", pod, [2]string{"NETBED_IDENTITY", "web-0"}))
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		if res, err = types100.NewResultFromResult(r); err != nil {
			t.Fatal(err)
		}
	})
	var mac net.HardwareAddr
	for _, ifc := range res.Interfaces {
		if ifc.Sandbox != "" {
			mac, _ = net.ParseMAC(ifc.Mac)
		}
	}
	ip, _ := netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
	if mac == nil || !ip.IsValid() {
		t.Fatalf("result without the pod's MAC or IPv4 address: %+v", res)
	}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("no gratuitous ARP from %v for %v on the host's bridge: %v", mac, ip, err)
		}
		b := buf[:n]
		if n < 42 || !bytes.Equal(b[6:12], mac) || binary.BigEndian.Uint16(b[12:14]) != unix.ETH_P_ARP {
			continue
		}
		spa, tpa := netip.AddrFrom4([4]byte(b[28:32])), netip.AddrFrom4([4]byte(b[38:42]))
		if binary.BigEndian.Uint16(b[20:22]) == 1 && spa == ip && tpa == ip && bytes.Equal(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
			return
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
