package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logagent/logagent/conf"
	"github.com/logagent/logagent/internal/testenv"
)

const testPassword = "pa55-w0rd-never-shown"

// securedKafka starts kfake with TLS (a server certificate from ca; with
// clientCA, client certificates required) and, when mech is set, SASL with
// user agent / testPassword.
func securedKafka(t *testing.T, ca *testenv.CA, clientCA *testenv.CA, mech string, expired bool) []string {
	t.Helper()
	srv, err := ca.Issue("kafka", expired)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := testenv.ServerTLS(srv, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1), kfake.TLS(tc)}
	if mech != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mech, "agent", testPassword))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestSecurity sends through TLS with each SASL mechanism, and with mutual
// TLS, with both clients; the limits client and Check connect the same way.
func TestSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("agent", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{conf.SASLPlain, conf.SASLSCRAM256, conf.SASLSCRAM512, "mtls"} {
		var addrs []string
		if mech == "mtls" {
			addrs = securedKafka(t, ca, ca, "", false)
		} else {
			addrs = securedKafka(t, ca, nil, mech, false)
		}
		secure := func(k *conf.Kafka) {
			k.TLS = conf.TLS{Enabled: true, CAFile: ca.File}
			if mech == "mtls" {
				k.TLS.CertFile, k.TLS.KeyFile = client.Cert, client.Key
			} else {
				k.SASLMechanism, k.SASLUsername, k.SASLPassword = mech, "agent", testPassword
			}
		}
		for _, cl := range []string{conf.ClientSarama, conf.ClientFranzGo} {
			t.Run(mech+"/"+cl, func(t *testing.T) {
				topic := strings.ToLower(strings.ReplaceAll(mech+"-"+cl, "-", "_"))
				p, a := newProducer(t, cl, addrs, secure)
				defer p.Close(context.Background())
				for i := 0; i < 3; i++ {
					if err := p.Send(context.Background(), &Message{Topic: topic, Value: []byte(fmt.Sprint(i))}); err != nil {
						t.Fatal(err)
					}
				}
				a.wait(t, 3)
				if len(a.errs) != 0 {
					t.Fatalf("sends failed: %v", a.errs)
				}
				c := conf.Default().Kafka
				c.Brokers = addrs
				secure(&c)
				n, states, err := Check(c, []string{topic})
				if err != nil || n != 1 || !states[0].Exists || states[0].LimitErr != nil {
					t.Fatalf("check: %d brokers, %+v, %v", n, states, err)
				}
			})
		}
	}
}

// TestSecurityFailures: a wrong password and an unknown CA make the
// producer unhealthy with an error that says so, without the password.
func TestSecurityFailures(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testenv.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	addrs := securedKafka(t, ca, nil, conf.SASLSCRAM512, false)
	expired := securedKafka(t, ca, nil, conf.SASLSCRAM512, true)
	cases := []struct {
		name, want string
		tweak      func(*conf.Kafka)
	}{
		{"wrong password", "check [kafka] sasl_username and sasl_password", func(k *conf.Kafka) {
			k.TLS = conf.TLS{Enabled: true, CAFile: ca.File}
			k.SASLMechanism, k.SASLUsername, k.SASLPassword = conf.SASLSCRAM512, "agent", "wrong-"+testPassword
		}},
		{"expired", "certificate has expired or is not valid yet; renew it", func(k *conf.Kafka) {
			k.Brokers = expired
			k.TLS = conf.TLS{Enabled: true, CAFile: ca.File}
			k.SASLMechanism, k.SASLUsername, k.SASLPassword = conf.SASLSCRAM512, "agent", testPassword
		}},
		{"unknown CA", "unknown authority; set [kafka] tls_ca_file", func(k *conf.Kafka) {
			k.TLS = conf.TLS{Enabled: true, CAFile: other.File}
			k.SASLMechanism, k.SASLUsername, k.SASLPassword = conf.SASLSCRAM512, "agent", testPassword
		}},
	}
	for _, tc := range cases {
		for _, cl := range []string{conf.ClientSarama, conf.ClientFranzGo} {
			t.Run(tc.name+"/"+cl, func(t *testing.T) {
				p, _ := newProducer(t, cl, addrs, tc.tweak)
				c := conf.Default().Kafka
				c.Brokers = addrs
				tc.tweak(&c)
				defer p.Close(context.Background())
				// sarama's Send waits for the connection: sent aside.
				ctx, cancel := context.WithCancel(context.Background())
				sent := make(chan struct{})
				go func() { defer close(sent); p.Send(ctx, &Message{Topic: "t", Value: []byte("x")}) }()
				defer func() { cancel(); <-sent }()
				var err error
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if err = p.Healthy(); err != nil && err != errNotProbed && !strings.Contains(err.Error(), "not connected") {
						break
					}
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), c.Brokers[0]) {
					t.Fatalf("health %v, want an error with %q", err, tc.want)
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Fatalf("the error shows the password: %v", err)
				}
				if _, _, err := Check(c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("check: %v, want an error with %q", err, tc.want)
				}
			})
		}
	}
}
