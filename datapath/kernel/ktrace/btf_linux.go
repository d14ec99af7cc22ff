package ktrace

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// layout is where the programs find what they read, taken from the
// running kernel's BTF (the verifier checks each load against it, so a
// wrong offset fails the load rather than reading garbage).
type layout struct {
	skbDev, skbSk, skbHead, skbData, skbLen, skbNetworkHeader, skbProtocol int16
	devIfindex, devNet                                                     int16 // net_device.ifindex, .nd_net.net
	netInum                                                                int16 // net.ns.inum
	skNet                                                                  int16 // sock.__sk_common.skc_net.net
	// Argument slots of the tracepoints (after the hidden __data).
	xmitDevArg, kfreeLocationArg, kfreeReasonArg int16
}

// field is a member's offset and size, found through anonymous unions and
// structs and typedefs.
type field struct{ off, size uint32 }

func memberOf(t btf.Type, name string) (field, btf.Type, bool) {
	var members []btf.Member
	switch s := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		members = s.Members
	case *btf.Union:
		members = s.Members
	default:
		return field{}, nil, false
	}
	for _, m := range members {
		if m.BitfieldSize != 0 {
			continue
		}
		if m.Name == name {
			sz, err := btf.Sizeof(m.Type)
			if err != nil {
				return field{}, nil, false
			}
			return field{off: m.Offset.Bytes(), size: uint32(sz)}, m.Type, true
		}
		if m.Name == "" {
			if f, mt, ok := memberOf(m.Type, name); ok {
				f.off += m.Offset.Bytes()
				return f, mt, true
			}
		}
	}
	return field{}, nil, false
}

// offsetOf is the offset of the member at a dotted path in the struct
// named typ, which must be size bytes.
func offsetOf(spec *btf.Spec, typ, path string, size uint32) (int16, error) {
	var t btf.Type
	var s *btf.Struct
	if err := spec.TypeByName(typ, &s); err != nil {
		return 0, fmt.Errorf("kernel BTF: struct %s: %w", typ, err)
	}
	t = s
	var off uint32
	var f field
	for _, name := range strings.Split(path, ".") {
		var ok bool
		f, t, ok = memberOf(t, name)
		if !ok {
			return 0, fmt.Errorf("kernel BTF: struct %s has no member %s", typ, path)
		}
		off += f.off
	}
	if f.size != size {
		return 0, fmt.Errorf("kernel BTF: %s.%s is %d bytes, want %d", typ, path, f.size, size)
	}
	return int16(off), nil
}

// tracepointArg is the slot of tracepoint tp's argument of type want
// (after skip earlier ones of that type) in the context of a tp_btf
// program. The prototypes in BTF have no parameter names, so arguments
// are told by type; the hidden first parameter is not in the context.
func tracepointArg(spec *btf.Spec, tp string, skip int, want func(btf.Type) bool) (int16, error) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+tp, &td); err != nil {
		return 0, fmt.Errorf("kernel BTF: tracepoint %s: %w", tp, err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return 0, fmt.Errorf("kernel BTF: btf_trace_%s is not a function pointer", tp)
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return 0, fmt.Errorf("kernel BTF: btf_trace_%s is not a function pointer", tp)
	}
	for i, p := range fp.Params {
		if i > 0 && want(p.Type) {
			if skip == 0 {
				return int16(i - 1), nil
			}
			skip--
		}
	}
	return 0, fmt.Errorf("kernel BTF: tracepoint %s lacks an argument", tp)
}

// pointerTo matches a pointer to the named struct (or to void for "").
func pointerTo(name string) func(btf.Type) bool {
	return func(t btf.Type) bool {
		p, ok := t.(*btf.Pointer)
		if !ok {
			return false
		}
		target := btf.UnderlyingType(p.Target)
		if name == "" {
			_, ok := target.(*btf.Void)
			return ok
		}
		s, ok := target.(*btf.Struct)
		return ok && s.Name == name
	}
}

// enumNamed matches the named enum.
func enumNamed(name string) func(btf.Type) bool {
	return func(t btf.Type) bool {
		e, ok := btf.UnderlyingType(t).(*btf.Enum)
		return ok && e.Name == name
	}
}

func loadLayout(spec *btf.Spec) (layout, error) {
	var l layout
	var errs []error
	at := func(dst *int16, typ, path string, size uint32) {
		off, err := offsetOf(spec, typ, path, size)
		errs = append(errs, err)
		*dst = off
	}
	at(&l.skbDev, "sk_buff", "dev", 8)
	at(&l.skbSk, "sk_buff", "sk", 8)
	at(&l.skbHead, "sk_buff", "head", 8)
	at(&l.skbData, "sk_buff", "data", 8)
	at(&l.skbLen, "sk_buff", "len", 4)
	at(&l.skbNetworkHeader, "sk_buff", "network_header", 2)
	at(&l.skbProtocol, "sk_buff", "protocol", 2)
	at(&l.devIfindex, "net_device", "ifindex", 4)
	at(&l.devNet, "net_device", "nd_net.net", 8)
	at(&l.netInum, "net", "ns.inum", 4)
	at(&l.skNet, "sock", "__sk_common.skc_net.net", 8)
	arg := func(dst *int16, tp string, want func(btf.Type) bool) {
		i, err := tracepointArg(spec, tp, 0, want)
		errs = append(errs, err)
		*dst = i
	}
	// net_dev_start_xmit(skb, dev), kfree_skb(skb, location, reason, rx_sk).
	arg(&l.xmitDevArg, "net_dev_start_xmit", pointerTo("net_device"))
	arg(&l.kfreeLocationArg, "kfree_skb", pointerTo(""))
	arg(&l.kfreeReasonArg, "kfree_skb", enumNamed("skb_drop_reason"))
	for _, tp := range []string{"netif_receive_skb", "net_dev_start_xmit", "kfree_skb"} {
		i, err := tracepointArg(spec, tp, 0, pointerTo("sk_buff"))
		if err == nil && i != 0 {
			err = fmt.Errorf("kernel BTF: tracepoint %s: the sk_buff is argument %d, want 0", tp, i)
		}
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}

// dropReasons names enum skb_drop_reason's values as this kernel numbers
// them, without the SKB_DROP_REASON_ prefix: NETFILTER_DROP, NEIGH_FAILED.
type dropReasons map[uint32]string

func loadDropReasons(spec *btf.Spec) (dropReasons, error) {
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("kernel BTF: enum skb_drop_reason: %w", err)
	}
	names := make(dropReasons, len(e.Values))
	for _, v := range e.Values {
		n := strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
		n = strings.TrimPrefix(n, "SKB_")
		if _, dup := names[uint32(v.Value)]; !dup {
			names[uint32(v.Value)] = n
		}
	}
	return names, nil
}

// dropSubsysShift puts a subsystem's own reasons (mac80211, openvswitch)
// above the core enum (SKB_DROP_REASON_SUBSYS_SHIFT).
const dropSubsysShift = 16

// consumed is the highest value that is not a drop (SKB_NOT_DROPPED_YET,
// SKB_CONSUMED).
const consumed = 1

func (d dropReasons) name(v uint32) string {
	if n, ok := d[v]; ok && v>>dropSubsysShift == 0 {
		return n
	}
	if sub := v >> dropSubsysShift; sub != 0 {
		return fmt.Sprintf("SUBSYS_%d_%d", sub, v&(1<<dropSubsysShift-1))
	}
	return fmt.Sprintf("REASON_%d", v)
}
