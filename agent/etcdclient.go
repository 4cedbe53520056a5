package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/etcd"
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
	return etcd.Connect(ctx, c)
}

// explainEtcd turns an error of connecting to etcd into one line naming the
// endpoints and the setting to fix. gRPC reports a failed TLS handshake as
// a timeout: with TLS on, each endpoint's handshake is tried again here to
// find its reason.
func explainEtcd(c conf.Etcd, err error) error {
	eps := strings.Join(c.Endpoints, ",")
	if errors.Is(rpctypes.Error(err), rpctypes.ErrAuthFailed) {
		return fmt.Errorf("etcd %s: authentication as %q failed: check [etcd] username and password (or password_file) (%w)", eps, c.Username, err)
	}
	tc, terr := c.TLS.Config()
	if tc == nil || terr != nil {
		return fmt.Errorf("%s: %w", eps, err)
	}
	for _, ep := range c.Endpoints {
		host := strings.TrimPrefix(strings.TrimPrefix(ep, "https://"), "http://")
		if herr := tlsHandshake(host, tc); herr != nil {
			return fmt.Errorf("TLS handshake with etcd %s failed: %v; check [etcd] tls_ca_file (the CA of etcd's certificate) and tls_cert_file/tls_key_file (a client certificate etcd's CA signed)", ep, herr)
		}
	}
	return fmt.Errorf("%s: %w", eps, err)
}

// tlsHandshake connects to addr with tc and waits briefly for a refusal:
// with TLS 1.3 a server refuses a client certificate after the client's
// side of the handshake is done.
func tlsHandshake(addr string, tc *tls.Config) error {
	tc = tc.Clone()
	tc.NextProtos = []string{"h2"}
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	// An HTTP/2 client preface, so that a server that took the
	// certificate answers (its SETTINGS) instead of waiting.
	conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := conn.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "tls:") {
		return err
	}
	return nil
}
