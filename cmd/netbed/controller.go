package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netbed/netbed/controller"
	"github.com/netbed/netbed/controller/api"
	"github.com/netbed/netbed/controller/cnc"
	"github.com/netbed/netbed/controller/election"
	"github.com/netbed/netbed/controller/store"
	"github.com/netbed/netbed/controller/store/etcdstore"
	"github.com/netbed/netbed/topologies"
	"github.com/netbed/netbed/topologies/clab"
)

func init() {
	register(func() *cobra.Command {
		c := &cobra.Command{
			Use:   "controller",
			Short: "run the SDN controller (network service, IPAM, port states) over HTTP",
			Args: func(*cobra.Command, []string) error {
				return usageErr("want 'netbed controller serve --store path --listen addr'")
			},
			RunE: func(*cobra.Command, []string) error { return nil },
		}
		var o controllerFlags
		serve := &cobra.Command{
			Use:   "serve [flags]",
			Short: "serve the controller's HTTP API on its bbolt store until SIGINT or SIGTERM",
			Args:  noArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return runController(o, c.OutOrStdout())
			},
		}
		fs := serve.Flags()
		fs.StringVar(&o.store, "store", "netbed-controller.db", "bbolt store file (created if missing), or etcd://host:port[,host:port…] to serve as one of several replicas on etcd")
		fs.StringVar(&o.etcd.Prefix, "etcd-prefix", "/netbed/", "with an etcd store, the prefix of every key it writes (one per controller sharing the etcd)")
		fs.StringVar(&o.etcd.Name, "replica", "", "with an etcd store, this replica's name (default host-pid-random)")
		fs.IntVar(&o.etcd.MaxTxnOps, "etcd-max-txn-ops", 128, "with an etcd store, etcd's --max-txn-ops: the most writes (and comparisons) one commit may hold")
		fs.IntVar(&o.etcd.Committers, "etcd-committers", 1, "with an etcd store, how many batches of changes this replica commits at once, each as a writer of its own (raise it when etcd is on other machines and its round trip bounds the rate)")
		fs.StringVar(&o.etcdCA, "etcd-ca", "", "with an etcd store, speak TLS to etcd: the CA file its server certificates are signed by")
		fs.StringVar(&o.etcdCert, "etcd-cert", "", "with --etcd-ca, the client certificate to present to etcd (for its --client-cert-auth)")
		fs.StringVar(&o.etcdKey, "etcd-key", "", "with --etcd-cert, the client certificate's key")
		fs.BoolVar(&o.cncElection, "cnc-election", false, "with an etcd store and no --topology, stand in the CNC's election all the same: the CNC runs beside the leaves, outside the replicas, and reports through whichever replica leads (a netns run's)")
		fs.DurationVar(&o.leaderTTL, "leader-ttl", 5*time.Second, "with an etcd store and --topology, how long the CNC's leader may be silent before another replica takes over")
		fs.StringVar(&o.listen, "listen", "127.0.0.1:7480", "address to serve the HTTP API on: host:port, or unix:/path/to/socket")
		fs.DurationVar(&o.lockTimeout, "lock-timeout", 2*time.Second, "how long to wait for another process's lock on the store")
		fs.StringVar(&o.topology, "topology", "", "fabric topology (containerlab file): run the CNC, which configures the leaves of bound ports (in memory) and reports their overlay")
		fs.StringVar(&o.clusterCIDR, "cluster-cidr", "", "generation 3: the cluster pool nodes get their pod CIDRs from (PUT /v1/nodes/{name}), e.g. 10.244.0.0/16")
		fs.IntVar(&o.nodeMask, "node-mask", 24, "with --cluster-cidr, the prefix length of each node's block")
		fs.IntVar(&o.parent, "parent", 0, "shut down when the process with this id, which started this one, has exited (a netns run's controller)")
		o.sec.add(fs)
		c.AddCommand(serve, newControllerCertsCmd())
		return c
	})
}

type controllerFlags struct {
	store, listen, topology, clusterCIDR string
	lockTimeout, leaderTTL               time.Duration
	cncElection                          bool
	nodeMask, parent                     int
	sec                                  securityFlags
	etcd                                 etcdstore.Options
	etcdCA, etcdCert, etcdKey            string
}

func runController(o controllerFlags, stdout io.Writer) error {
	storePath, listen, lockWait, topoFile, clusterCIDR, nodeMask, parent := &o.store, &o.listen, &o.lockTimeout, &o.topology, &o.clusterCIDR, &o.nodeMask, &o.parent
	sec, err := o.sec.prepare(o.listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *parent > 0 {
		ctx = exitWithParent(ctx, *parent)
	}
	var topo *topologies.Topology
	if *topoFile != "" {
		t, _, err := clab.Load(*topoFile)
		if err != nil {
			return err
		}
		topo = t
	}
	var pool *controller.ClusterPool
	if *clusterCIDR != "" {
		p, err := netip.ParsePrefix(*clusterCIDR)
		if err != nil {
			return usageErr("--cluster-cidr: %v", err)
		}
		pool = &controller.ClusterPool{CIDR: p, MaskBits: *nodeMask}
	}
	eps, isEtcd, err := etcdstore.ParseURL(*storePath)
	if err != nil {
		return usageErr("--store: %v", err)
	}
	if !isEtcd && o.etcdCA+o.etcdCert+o.etcdKey != "" {
		return usageErr("--etcd-ca, --etcd-cert and --etcd-key are for an etcd store (--store etcd://host:port,…)")
	}
	if isEtcd {
		o.etcd.Endpoints = eps
		if o.etcdCA+o.etcdCert+o.etcdKey != "" {
			if o.etcd.TLS, err = etcdstore.TLS(o.etcdCA, o.etcdCert, o.etcdKey); err != nil {
				return usageErr("%v", err)
			}
		}
		st, err := etcdstore.Open(o.etcd)
		if err != nil {
			return err
		}
		defer st.Close()
		return serveOn(ctx, st, *storePath, *listen, topo, pool, cncElect{ttl: o.leaderTTL, always: o.cncElection}, sec, stdout)
	}
	return serveController(ctx, *storePath, *listen, *lockWait, topo, pool, sec, stdout)
}

// serveController runs the API until ctx ends, then shuts down gracefully:
// in-flight requests finish, overlay hooks stop, the store closes. sec nil
// serves plain HTTP to everyone.
func serveController(ctx context.Context, storePath, listen string, lockWait time.Duration, topo *topologies.Topology, pool *controller.ClusterPool, sec *serverSecurity, stdout io.Writer) error {
	st, err := store.OpenBolt(storePath, store.BoltOptions{LockTimeout: lockWait})
	if err != nil {
		return err
	}
	defer st.Close()
	return serveOn(ctx, st, storePath, listen, topo, pool, cncElect{}, sec, stdout)
}

// cncElect is how an etcd replica stands in the CNC's election: a leader
// silent for ttl is replaced; always campaigns without a topology too
// (the CNC then runs outside the replicas and follows the leader).
type cncElect struct {
	ttl    time.Duration
	always bool
}

// serveOn serves the API on an open store. On an etcd store the CNC (with
// topo) runs on the replica that wins the election under the store's
// prefix, for at most el.ttl after that replica is lost. sec nil serves
// plain HTTP to everyone.
func serveOn(ctx context.Context, st store.Store, storePath, listen string, topo *topologies.Topology, pool *controller.ClusterPool, el cncElect, sec *serverSecurity, stdout io.Writer) error {
	if sec == nil {
		sec = &serverSecurity{limits: api.DefaultLimits()}
	}
	est, replicated := st.(*etcdstore.Store)
	svc := controller.New(st, nil, nil)
	if pool != nil {
		if err := svc.SetClusterPool(ctx, *pool); err != nil {
			svc.Close()
			return err
		}
	}
	var overlay *cnc.CNC
	var elected sync.WaitGroup
	defer func() {
		// The service first: its hooks feed the CNC.
		svc.Close()
		elected.Wait()
		if overlay != nil {
			overlay.Close()
		}
	}()
	if replicated && topo == nil && el.always {
		ectx, stopElection := context.WithCancel(ctx)
		defer stopElection()
		elected.Add(1)
		go func() {
			defer elected.Done()
			_ = election.Run(ectx, est.Client(), est.Prefix()+"cnc", est.Name(), el.ttl, func(lctx context.Context) {
				fmt.Fprintf(stdout, "controller: replica %s leads the CNC's election (the CNC runs beside the leaves)\n", est.Name())
				<-lctx.Done()
				fmt.Fprintf(stdout, "controller: replica %s no longer leads the CNC's election\n", est.Name())
			})
		}()
	}
	if topo != nil && replicated {
		ectx, stopElection := context.WithCancel(ctx)
		defer stopElection()
		elected.Add(1)
		go func() {
			defer elected.Done()
			_ = election.Run(ectx, est.Client(), est.Prefix()+"cnc", est.Name(), el.ttl, func(lctx context.Context) {
				c, err := cnc.Attach(lctx, svc, topo, cnc.NewMemoryDriver(), cnc.Options{})
				if err != nil {
					fmt.Fprintf(stdout, "controller: replica %s won the CNC's election but could not start it: %v\n", est.Name(), err)
					return
				}
				fmt.Fprintf(stdout, "controller: replica %s runs the CNC\n", est.Name())
				<-lctx.Done()
				svc.SetOverlay(nil)
				c.Close()
				fmt.Fprintf(stdout, "controller: replica %s no longer runs the CNC\n", est.Name())
			})
		}()
	} else if topo != nil {
		// Without a fabric driver on this machine the leaves are the CNC's
		// in-memory model; ports still go BUILD -> ACTIVE through it.
		c, err := cnc.Attach(ctx, svc, topo, cnc.NewMemoryDriver(), cnc.Options{})
		if err != nil {
			return err
		}
		overlay = c
	}
	network, addr := "tcp", listen
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		// A socket left by a killed controller is in the way; the store's
		// lock, taken above, says that no other controller serves it (each
		// etcd replica has a socket of its own).
		network, addr = "unix", path
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("listen on %s: %w", listen, err)
		}
	}
	ln, err := sec.listen(network, addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another controller running there?)", listen, err)
	}
	// Requests run under base, cancelled when shutdown starts, so that
	// long-polls (?wait=) end at once instead of holding the shutdown.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	handler := api.NewServer(svc)
	sec.apply(handler, stdout)
	srv := &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    64 << 10, // and bodies 1 MiB (the API's limit)
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // a body trickled in holds no goroutine for long
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	fmt.Fprintf(stdout, "controller: store %s, serving %s://%s\n", storePath, sec.scheme(), ln.Addr())
	if topo != nil && !replicated {
		fmt.Fprintf(stdout, "controller: the CNC configures the leaves of %s\n", topo)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "controller: shutting down")
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// exitWithParent returns a context that ends once parent is no longer
// this process's parent (it exited and this one was reparented; maybe
// before this process even started), so that a controller started by a
// run that was killed does not outlive it.
func exitWithParent(ctx context.Context, parent int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	if os.Getppid() != parent {
		cancel()
		return ctx
	}
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}
