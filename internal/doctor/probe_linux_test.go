package doctor

import (
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/netbed/netbed/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	sort.Strings(out)
	return out
}

func netnsEntries() []string {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// directProbe creates link in a namespace of its own, as a second opinion.
func directProbe(t *testing.T, mk func(h *netlink.Handle) error) bool {
	t.Helper()
	res := make(chan bool)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			res <- false
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			t.Error(err)
			res <- false
			return
		}
		defer ns.Close()
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		ok := err == nil && mk(h) == nil
		if h != nil {
			h.Close()
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		res <- ok
	}()
	return <-res
}

func TestRun(t *testing.T) {
	testutil.RequireRoot(t)
	nsBefore := netnsEntries()
	r := Run()
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
		if !c.OK && c.Detail == "" {
			t.Errorf("check %s failed without saying why", c.Name)
		}
	}
	if !reflect.DeepEqual(names, CheckNames) {
		t.Errorf("checks %v, want %v", names, CheckNames)
	}
	if c, _ := r.Check(Root); c.OK != (os.Geteuid() == 0) {
		t.Errorf("root check %+v disagrees with euid %d", c, os.Geteuid())
	}
	if !reflect.DeepEqual(r.Backends, Backends(r.Checks)) {
		t.Errorf("backends %+v do not follow from the checks", r.Backends)
	}
	if !r.Backends[0].OK() {
		t.Error("sim must always be able to run")
	}

	// A second opinion on a feature the kernel has and one it may lack.
	second := map[string]func(h *netlink.Handle) error{
		Bridge: func(h *netlink.Handle) error {
			return h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "nbtest-br"}})
		},
		Dummy: func(h *netlink.Handle) error {
			return h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "nbtest-dum"}})
		},
		VXLAN: func(h *netlink.Handle) error {
			return h.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "nbtest-vx"}, VxlanId: 7, Port: 4789})
		},
	}
	for name, mk := range second {
		c, _ := r.Check(name)
		if direct := directProbe(t, mk); direct != c.OK {
			t.Errorf("doctor says %s ok=%v (%s), a direct probe says %v", name, c.OK, c.Detail, direct)
		}
	}

	// Other packages' tests may add links and namespaces meanwhile, so
	// look only for what doctor names: "nbd-" devices.
	for _, l := range rootLinks(t) {
		if strings.HasPrefix(l, "nbd-") {
			t.Errorf("doctor left link %s in the root namespace", l)
		}
	}
	for _, n := range netnsEntries() {
		if strings.HasPrefix(n, "nbd") && !slices.Contains(nsBefore, n) {
			t.Errorf("doctor left namespace %s", n)
		}
	}
}
