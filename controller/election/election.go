// Package election runs a task on exactly one of a controller's replicas at
// a time, chosen by an etcd election, and hands it to another replica when
// the leader dies or loses etcd.
package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Run campaigns under key as id until ctx ends. Each time this replica wins
// it calls lead with a context that ends when leadership is lost: the
// session's lease was not renewed for ttl (this replica lost etcd) or ctx
// ended. lead must return once its context ends; Run then resigns and
// campaigns again. A replica that dies holds leadership for at most ttl
// (rounded up to whole seconds), after which another replica's lead starts.
func Run(ctx context.Context, cli *clientv3.Client, key, id string, ttl time.Duration, lead func(ctx context.Context)) error {
	if id == "" {
		return errors.New("election: empty id")
	}
	secs := max(1, int((ttl+time.Second-1)/time.Second))
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(secs), concurrency.WithContext(ctx))
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		el := concurrency.NewElection(sess, key)
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sess.Done():
				cancel()
			case <-lctx.Done():
			}
		}()
		if err := el.Campaign(lctx, id); err == nil {
			lead(lctx)
		}
		cancel()
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(rctx)
		rcancel()
		_ = sess.Close()
		sleep(ctx, 50*time.Millisecond)
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Leader returns the id of the leader under key, "" when there is none.
func Leader(ctx context.Context, cli *clientv3.Client, key string) (string, error) {
	resp, err := cli.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		return "", fmt.Errorf("read the leader of %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
