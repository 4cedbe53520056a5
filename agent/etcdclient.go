package agent

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/conf"
)

// newEtcdClient is the client of the [etcd] section, for the agent and for
// check. Its own zap logger is silenced: the agent logs what matters about
// etcd itself, with slog.
func newEtcdClient(c conf.Etcd) (*clientv3.Client, error) {
	return newEtcdClientCtx(context.Background(), c)
}

// newEtcdClientCtx is newEtcdClient whose making (authentication included)
// ends with ctx.
func newEtcdClientCtx(ctx context.Context, c conf.Etcd) (*clientv3.Client, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("[etcd] TLS: %w", err)
	}
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, TLS: tc,
		Username: c.Username, Password: c.Password.Reveal(), Logger: zap.NewNop(), Context: ctx})
}
