package controller

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/netbed/netbed/controller/ipam"
	"github.com/netbed/netbed/controller/store"
)

// Check verifies the store's invariants and returns every violation found
// (nil when consistent): each port's addresses are held by that port and by
// nobody else, every address held for a port belongs to a port that lists
// it (no leaks), indexes agree with records, pool counters match.
func (s *Service) Check(ctx context.Context) ([]string, error) {
	var problems []string
	err := s.st.View(ctx, func(tx store.Tx) error {
		problems = nil
		bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
		ports := map[string]Port{}
		if err := scanJSON(tx, bPorts, func(k []byte, p Port) { ports[string(k)] = p }); err != nil {
			return err
		}
		owner := map[string]string{} // subnet 0 addr -> port id, from ports
		for id, p := range ports {
			if got := string(tx.Get(bPortName, []byte(p.Name))); got != id {
				bad("port %s %q: name index gives %q", id, p.Name, got)
			}
			if got := string(tx.Get(bPortMAC, key(p.Network, p.MAC))); got != id {
				bad("port %s %q: MAC index for %s gives %q", id, p.Name, p.MAC, got)
			}
			if p.Host != "" && tx.Get(bPortHost, key(p.Host, id)) == nil {
				bad("port %s %q: missing from host index of %q", id, p.Name, p.Host)
			}
			for _, ip := range p.IPs {
				k := ip.Subnet + "\x00" + ip.Address.String()
				if other, dup := owner[k]; dup {
					bad("address %v of subnet %s listed by ports %s and %s", ip.Address, ip.Subnet, other, id)
				}
				owner[k] = id
				if h := ipam.Holder(tx, ip.Subnet, ip.Address); h != portHolderPrefix+id {
					bad("port %s %q lists %v but IPAM holder is %q", id, p.Name, ip.Address, h)
				}
			}
		}
		for _, b := range []string{bPortName, bPortHost} {
			_ = tx.Scan(b, nil, nil, func(k, v []byte) bool {
				id := string(v)
				if b == bPortHost {
					id = string(k[strings.IndexByte(string(k), 0)+1:])
				}
				if _, ok := ports[id]; !ok {
					bad("index %s entry %q points at missing port %s", b, k, id)
				}
				return true
			})
		}
		subnets, err := listJSON[Subnet](tx, bSubnets)
		if err != nil {
			return err
		}
		for _, sub := range subnets {
			p := sub.pool()
			var inRange uint64
			_ = ipam.ForEach(tx, sub.ID, func(a netip.Addr, h string) bool {
				if !sub.CIDR.Contains(a) {
					bad("subnet %s (%v): holds %v outside its CIDR", sub.ID, sub.CIDR, a)
				}
				for _, r := range p.Ranges {
					if r.Contains(a) {
						inRange++
						break
					}
				}
				if pid, ok := strings.CutPrefix(h, portHolderPrefix); ok {
					if owner[sub.ID+"\x00"+a.String()] != pid {
						bad("address %v of subnet %s held by %s, which does not list it (leak)", a, sub.ID, h)
					}
				}
				return true
			})
			if u := ipam.Used(tx, p); u != inRange {
				bad("subnet %s (%v): pool counter %d, addresses held in range %d", sub.ID, sub.CIDR, u, inRange)
			}
		}
		return nil
	})
	return problems, err
}
