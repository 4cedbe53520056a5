package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/logagent/logagent/conf"
)

// Connect makes an etcd client from an [etcd] section: endpoints, TLS,
// username and password (authenticated when it is made, so it fails while
// etcd is down). Its making ends with ctx.
func Connect(ctx context.Context, c conf.Etcd) (*clientv3.Client, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("[etcd] TLS: %w", err)
	}
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, TLS: tc,
		Username: c.Username, Password: c.Password.Reveal(), Logger: zap.NewNop(), Context: ctx})
}
