package doctor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Run probes the machine. Everything it creates lives in a namespace made
// for the purpose and not bind-mounted anywhere, so it all disappears when
// Run returns; Run leaves no trace on the host.
func Run() *Result {
	checks := map[string]Check{}
	set := func(name string, err error, ok string) {
		if err != nil {
			checks[name] = Check{Name: name, Detail: err.Error()}
			return
		}
		checks[name] = Check{Name: name, OK: true, Detail: ok}
	}
	if os.Geteuid() == 0 {
		set(Root, nil, "running as root")
	} else {
		set(Root, fmt.Errorf("running as uid %d: netns and kernel backends need root (run with sudo)", os.Geteuid()), "")
	}

	prog, err := loadProgram()
	set(BPFLoad, err, "loaded a sched_cls program")
	if prog != nil {
		defer prog.Close()
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		probeInNamespace(set, prog)
	}()
	<-done

	out := make([]Check, 0, len(CheckNames))
	for _, n := range CheckNames {
		c, ok := checks[n]
		if !ok {
			c = Check{Name: n, Detail: "not probed"}
		}
		out = append(out, c)
	}
	return &Result{Checks: out, Backends: Backends(out)}
}

// loadProgram loads the smallest tc program: return TC_ACT_OK.
func loadProgram() (*ebpf.Program, error) {
	_ = rlimit.RemoveMemlock() // needed only on kernels before 5.11
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "netbed_doctor",
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("load BPF program: %w", err)
	}
	return prog, nil
}

// probeInNamespace runs on its own goroutine: it locks the thread, moves it
// to a fresh namespace, probes, and moves back.
func probeInNamespace(set func(string, error, string), prog *ebpf.Program) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		set(Netns, fmt.Errorf("open current namespace: %w", err), "")
		return
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		set(Netns, fmt.Errorf("create network namespace: %w", err), "")
		return
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the thread dies with this goroutine
	}()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		set(Netns, fmt.Errorf("netlink socket in the new namespace: %w", err), "")
		return
	}
	defer h.Close()
	set(Netns, nil, "created a throw-away namespace")

	p := prober{h: h}
	veth, err := p.veth()
	set(Veth, err, "created a veth pair")
	if err != nil {
		for _, n := range []string{AFPacket, Macvlan, TCClsact, TCBPF, VLAN8021Q, Netem} {
			set(n, errors.New("not probed: needs a veth"), "")
		}
	} else {
		set(AFPacket, p.afPacket(veth), "opened a raw socket on the veth")
		set(Macvlan, p.add(&netlink.Macvlan{LinkAttrs: attrs("nbd-mv0", veth.Index), Mode: netlink.MACVLAN_MODE_BRIDGE}), "created on the veth")
		err := p.clsact(veth)
		set(TCClsact, err, "added a clsact qdisc")
		switch {
		case err != nil:
			set(TCBPF, errors.New("not probed: needs tc clsact"), "")
		case prog == nil:
			set(TCBPF, errors.New("not probed: needs bpf load"), "")
		default:
			set(TCBPF, p.tcBPF(veth, prog), "attached the program to tc ingress")
		}
		set(VLAN8021Q, p.add(&netlink.Vlan{LinkAttrs: attrs("nbd-vlan10", veth.Index), VlanId: 10}), "created a VLAN device")
		set(Netem, p.netem(veth), "added a netem qdisc")
	}
	set(Bridge, p.add(&netlink.Bridge{LinkAttrs: attrs("nbd-br0", 0)}), "created a bridge")
	set(VXLAN, p.add(&netlink.Vxlan{LinkAttrs: attrs("nbd-vx0", 0), VxlanId: 42, Port: 4789}), "created a VXLAN device")
	set(VXLANExternal, p.add(&netlink.Vxlan{LinkAttrs: attrs("nbd-vx1", 0), FlowBased: true, Port: 4790}), "created a VXLAN device in external (collect metadata) mode")
	set(BridgeVLANFiltering, p.vlanFiltering(), "created a VLAN-filtering bridge")
	set(Bond, p.add(netlink.NewLinkBond(attrs("nbd-bond0", 0))), "created a bond")
	set(Dummy, p.add(&netlink.Dummy{LinkAttrs: attrs("nbd-dum0", 0)}), "created a dummy device")
	ver, err := iptables()
	set(Iptables, err, ver)
}

func attrs(name string, parent int) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name = name
	a.ParentIndex = parent
	return a
}

type prober struct{ h *netlink.Handle }

func (p prober) add(l netlink.Link) error {
	if err := p.h.LinkAdd(l); err != nil {
		return fmt.Errorf("create %s %s: %w", l.Type(), l.Attrs().Name, err)
	}
	return nil
}

func (p prober) veth() (*netlink.LinkAttrs, error) {
	v := &netlink.Veth{LinkAttrs: attrs("nbd-veth0", 0), PeerName: "nbd-veth1"}
	if err := p.add(v); err != nil {
		return nil, err
	}
	for _, name := range []string{"nbd-veth0", "nbd-veth1"} {
		l, err := p.h.LinkByName(name)
		if err == nil {
			err = p.h.LinkSetUp(l)
		}
		if err != nil {
			return nil, fmt.Errorf("bring up %s: %w", name, err)
		}
	}
	l, err := p.h.LinkByName("nbd-veth0")
	if err != nil {
		return nil, err
	}
	return l.Attrs(), nil
}

// afPacket opens a raw socket bound to the veth; the calling thread is in
// the probe namespace, so the socket is too.
func (p prober) afPacket(veth *netlink.LinkAttrs) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: veth.Index}); err != nil {
		return fmt.Errorf("bind AF_PACKET socket: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (p prober) clsact(veth *netlink.LinkAttrs) error {
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: veth.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := p.h.QdiscAdd(q); err != nil {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	return nil
}

func (p prober) tcBPF(veth *netlink.LinkAttrs, prog *ebpf.Program) error {
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: veth.Index, Parent: netlink.HANDLE_MIN_INGRESS, Handle: netlink.MakeHandle(0, 1), Protocol: unix.ETH_P_ALL,
		},
		Fd: prog.FD(), Name: "netbed_doctor", DirectAction: true,
	}
	if err := p.h.FilterAdd(f); err != nil {
		return fmt.Errorf("attach BPF filter: %w", err)
	}
	return nil
}

func (p prober) netem(veth *netlink.LinkAttrs) error {
	q := netlink.NewNetem(
		netlink.QdiscAttrs{LinkIndex: veth.Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		netlink.NetemQdiscAttrs{Latency: 1000},
	)
	if err := p.h.QdiscAdd(q); err != nil {
		return fmt.Errorf("add netem qdisc: %w", err)
	}
	return nil
}

// vlanFiltering creates a bridge with vlan_filtering on and reads it back:
// a kernel without the feature may accept the attribute and ignore it.
func (p prober) vlanFiltering() error {
	on := true
	if err := p.add(&netlink.Bridge{LinkAttrs: attrs("nbd-br1", 0), VlanFiltering: &on}); err != nil {
		return err
	}
	l, err := p.h.LinkByName("nbd-br1")
	if err != nil {
		return err
	}
	if br, ok := l.(*netlink.Bridge); !ok || br.VlanFiltering == nil || !*br.VlanFiltering {
		return errors.New("the kernel accepted vlan_filtering=1 but reports it off")
	}
	return nil
}

// iptables adds and lists a rule with the iptables binary, inside the probe
// namespace (a child forked from a locked thread inherits its namespace).
func iptables() (string, error) {
	path, err := exec.LookPath("iptables")
	if err != nil {
		return "", errors.New("iptables is not installed (apt-get install iptables)")
	}
	if out, err := exec.Command(path, "-w", "5", "-A", "INPUT", "-i", "nbd-veth0", "-j", "ACCEPT").CombinedOutput(); err != nil {
		return "", fmt.Errorf("iptables -A: %v: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command(path, "-w", "5", "-S", "INPUT").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nbd-veth0") {
		return "", fmt.Errorf("iptables -S does not show the rule just added: %v: %s", err, strings.TrimSpace(string(out)))
	}
	ver, _ := exec.Command(path, "-V").Output()
	return "added a rule (" + strings.TrimSpace(string(ver)) + ")", nil
}
