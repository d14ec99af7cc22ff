package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// attach puts progs on lk's ingress in order (each hands what it lets
// pass to the next with TCX_NEXT): as TCX links where the kernel has
// them, else as clsact filters of increasing priority.
func (f *Fabric) attach(node string, h *netlink.Handle, lk netlink.Link, progs ...*ebpf.Program) ([]closer, error) {
	var out []closer
	for i, p := range progs {
		c, err := f.attachOne(node, h, lk, i, p)
		if err != nil {
			_ = closeAll(out)
			return nil, fmt.Errorf("attach program %d to %s ingress on %s: %w", i, lk.Attrs().Name, node, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *Fabric) attachOne(node string, h *netlink.Handle, lk netlink.Link, i int, p *ebpf.Program) (closer, error) {
	if f.tcxState != tcxMissing {
		var l link.Link
		err := f.env.Lab.Do(node, func() error {
			var err error
			l, err = link.AttachTCX(link.TCXOptions{Interface: lk.Attrs().Index, Program: p, Attach: ebpf.AttachTCXIngress, Anchor: link.Tail()})
			return err
		})
		switch {
		case err == nil:
			f.tcxState = tcxPresent
			return l, nil
		case f.tcxState == tcxUnknown && errors.Is(err, ebpf.ErrNotSupported):
			f.tcxState = tcxMissing
			f.progress("gen 3: no TCX in this kernel (%v); attaching clsact filters", err)
		default:
			return nil, err
		}
	}
	idx := lk.Attrs().Index
	if i == 0 {
		if err := h.QdiscReplace(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}); err != nil {
			return nil, fmt.Errorf("add clsact: %w", err)
		}
	}
	flt := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: netlink.HANDLE_MIN_INGRESS,
		Handle: netlink.MakeHandle(0, uint16(i+1)), Protocol: unix.ETH_P_ALL, Priority: uint16(i + 1)},
		Fd: p.FD(), Name: fmt.Sprint("netbed", i), DirectAction: true}
	if err := h.FilterAdd(flt); err != nil {
		return nil, fmt.Errorf("add tc filter: %w", err)
	}
	return &tcFilter{h: h, f: flt, qdisc: i == 0}, nil
}

// TCX availability, found at the first attach.
const (
	tcxUnknown = iota
	tcxPresent
	tcxMissing
)

// tcFilter is a program attached as a clsact filter; the first program's
// also removes the qdisc.
type tcFilter struct {
	h     *netlink.Handle
	f     *netlink.BpfFilter
	qdisc bool
}

func (c *tcFilter) Close() error {
	err := c.h.FilterDel(c.f)
	if c.qdisc {
		e := c.h.QdiscDel(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: c.f.LinkIndex,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}})
		if e != nil && !errors.Is(e, unix.ENOENT) && !errors.Is(e, unix.EINVAL) {
			err = errors.Join(err, e)
		}
	}
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("remove tc filter from ifindex %d: %w", c.f.LinkIndex, err)
	}
	return nil
}

// IngressProgram implements kernel.ProgramReporter: it asks the kernel in
// node's namespace which programs iface's ingress runs (TCX links, else
// clsact filters) and returns the name of the last, the one that
// redirects; "" when there is none or the kernel cannot say.
func (f *Fabric) IngressProgram(node, iface string) string {
	var id ebpf.ProgramID
	err := f.env.Lab.Do(node, func() error {
		lk, err := netlink.LinkByName(iface)
		if err != nil {
			return err
		}
		if f.tcxState != tcxMissing {
			res, err := link.QueryPrograms(link.QueryOptions{Target: lk.Attrs().Index, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				return err
			}
			if n := len(res.Programs); n > 0 {
				id = res.Programs[n-1].ID
			}
			return nil
		}
		flts, err := netlink.FilterList(lk, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			return err
		}
		prio := uint16(0)
		for _, fl := range flts {
			if bf, ok := fl.(*netlink.BpfFilter); ok && bf.Priority >= prio {
				id, prio = ebpf.ProgramID(bf.Id), bf.Priority
			}
		}
		return nil
	})
	if err != nil || id == 0 {
		return ""
	}
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}
